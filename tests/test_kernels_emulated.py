"""Run the CUDA kernels on the CPU through kernels/emu/cuda_emu.h and check them against NumPy.

The very .cu files that CuPy compiles are compiled by g++ against the emulation header (a small
generated wrapper #includes each one and exports its kernels), and every launch goes through
minialex.cuda.launch (grid, block, typed arguments) -- mostly via the same minialex.cuda.kernels
implementations that chain kernels on the GPU, run here with xp = NumPy. The oracles are the
float64 references in tests/kernel_reference.py.

Every output array is poisoned with NaN (or a sentinel) before the launch, so an element a kernel
forgets to write shows up, and every array sits between canaries that must survive the launch
(out-of-bounds writes). The emulator also fails a launch on barrier misuse (see cuda_emu.h).
Skipped only when g++ is missing.
"""
import ctypes
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

try:
    from minialex.cuda import kernels as cuda_kernels, launch, sources
except ImportError:  # run as `pytest` from a source checkout without the package installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from minialex.cuda import kernels as cuda_kernels, launch, sources
from minialex.shapes import ceil_div
try:
    from . import kernel_reference as ref
except ImportError:
    import kernel_reference as ref

KERNEL_DIR = sources.kernel_dir()
EMU_DIR = KERNEL_DIR / "emu"
KERNEL_FILES = ("conv2d.cu", "lrn.cu", "maxpool.cu", "elementwise.cu")
KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(')
GXX_FLAGS = ["-std=c++20", "-O1", "-fno-strict-aliasing", "-shared", "-fPIC", "-Wall",
             "-Wno-unknown-pragmas", "-Werror"]
ORDERS = {"forward": 0, "reverse": 1, "shuffle": 2}


def kernel_names(path):
    return KERNEL_RE.findall(pathlib.Path(path).read_text())


def compile_emulated(cu_path, out_dir, extra_names=()):
    """Start g++ on a wrapper that #includes cu_path and exports its kernels; returns the Popen."""
    cu_path = pathlib.Path(cu_path)
    names = list(kernel_names(cu_path)) + list(extra_names)
    wrapper = out_dir / f"{cu_path.stem}_emu.cpp"
    wrapper.write_text('#include "cuda_emu.h"\n' f'#include "{cu_path.resolve()}"\n' +
                       "".join(f"MINIALEX_EMU_KERNEL({n})\n" for n in names))
    so = out_dir / f"{cu_path.stem}.so"
    cmd = ["g++", *GXX_FLAGS, f"-I{EMU_DIR}", str(wrapper), "-o", str(so)]
    return so, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Emulator:
    """Runs launch.Launch objects on the emulated kernels (NumPy arrays as device memory)."""

    CODES = {np.int32: ("i", ctypes.c_int32), np.int64: ("l", ctypes.c_int64),
             np.float32: ("f", ctypes.c_float)}

    def __init__(self, libs):
        self.libs = libs
        self.launches = []  # kernel names, in order (tests check which kernels a path used)
        self.set_order("shuffle")

    def set_order(self, order, seed=1234):
        for lib in self.libs.values():
            lib.emu_set_schedule(ORDERS[order], seed)

    def signature(self, source, kernel):
        fn = getattr(self.libs[source], f"emu_signature_{kernel}")
        fn.restype = ctypes.c_char_p
        return fn().decode()

    def __call__(self, config):
        if config is None:
            return
        lib = self.libs[config.source]
        sig = self.signature(config.source, config.kernel)
        assert len(sig) == len(config.args), f"{config.kernel}: {len(config.args)} args for {sig}"
        holders = []
        for i, (code, a) in enumerate(zip(sig, config.args)):
            if isinstance(a, np.ndarray):
                assert code == "p", f"{config.kernel} arg {i}: array passed for '{code}'"
                holders.append(ctypes.c_void_p(a.ctypes.data))
            else:
                want, ctype = self.CODES.get(type(a), (None, None))
                assert want == code, f"{config.kernel} arg {i}: {type(a).__name__} for '{code}'"
                holders.append(ctype(a.item()))
        argv = (ctypes.c_void_p * len(holders))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
        fn = getattr(lib, f"emu_launch_{config.kernel}")
        fn.argtypes = [ctypes.POINTER(ctypes.c_uint)] * 2 + [ctypes.c_size_t, ctypes.c_void_p]
        grid = (ctypes.c_uint * 3)(*config.grid)
        block = (ctypes.c_uint * 3)(*config.block)
        rc = fn(grid, block, config.shared_mem, argv)
        lib.emu_last_error.restype = ctypes.c_char_p
        assert rc == 0, f"{config.kernel}: {lib.emu_last_error().decode()}"
        self.launches.append(config.kernel)


def build_emulator(out_dir):
    """An Emulator of every kernel file, compiled by g++ into out_dir (the files in parallel)."""
    jobs = {name: compile_emulated(KERNEL_DIR / name, out_dir) for name in KERNEL_FILES}
    libs = {}
    for name, (so, proc) in jobs.items():
        log, _ = proc.communicate()
        assert proc.returncode == 0, f"g++ failed on {name} with cuda_emu.h:\n{log}"
        libs[name] = ctypes.CDLL(str(so))
    return Emulator(libs)


@pytest.fixture(scope="session")
def emu(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found: the CUDA emulation tests need it")
    return build_emulator(tmp_path_factory.mktemp("emu"))


CANARY = {np.dtype(np.float32): 1234.5, np.dtype(np.int32): -777777, np.dtype(np.int64): -424242,
          np.dtype(np.uint8): 0xA5}
POISON = {np.dtype(np.float32): np.nan, np.dtype(np.int32): -999, np.dtype(np.int64): -999,
          np.dtype(np.uint8): 0x5A}


class GuardedArrays:
    """An array module (NumPy; CuPy in benchmarks/gpu_check.py) whose ``empty`` returns poisoned
    arrays between canaries (checked by ``check``); everything else is the module's own."""

    PAD = 67

    def __init__(self, module=np):
        self.module, self.buffers = module, []

    def empty(self, shape, dtype=np.float32):
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        dtype = np.dtype(dtype)
        n = int(np.prod(shape))
        buf = self.module.full(n + 2 * self.PAD, CANARY[dtype], dtype)
        a = buf[self.PAD:self.PAD + n].reshape(shape)
        a[...] = POISON[dtype]
        self.buffers.append((buf, n))
        return a

    def array(self, values, dtype=np.float32):
        a = self.empty(np.shape(values), dtype)
        a[...] = self.module.asarray(values)
        return a

    def check(self):
        for buf, n in self.buffers:
            canary = CANARY[np.dtype(buf.dtype)]
            assert bool((buf[:self.PAD] == canary).all()), "write before the start of an array"
            assert bool((buf[self.PAD + n:] == canary).all()), "write past the end of an array"

    def __getattr__(self, name):
        return getattr(self.module, name)


@pytest.fixture
def xp():
    guarded = GuardedArrays()
    yield guarded
    guarded.check()


def close(out, expected, rtol=1e-4):
    """float32 kernel output vs float64 reference: every element written, within rtol."""
    out = np.asarray(out)
    assert not np.isnan(out).any(), f"{np.isnan(out).sum()} elements unwritten (NaN poison left)"
    atol = rtol * 0.1 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)


rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- convolution ----------------------------------------------------------------------------------
# (N, C, H, W, O, kernel (kH, kW), stride, padding, groups)
CONV_CASES = [
    (1, 3, 11, 11, 5, (3, 3), 1, 1, 1),            # batch 1, odd sizes
    (2, 4, 9, 7, 6, (3, 3), 2, 1, 2),              # stride 2, groups 2, H != W
    (2, 6, 13, 13, 9, (5, 5), 1, 2, 3),            # conv2-like 5x5/1/2, groups 3, 3 column tiles
    (1, 3, 23, 23, 4, (11, 11), 4, 0, 1),          # conv1-like 11x11/4
    (2, 5, 8, 10, 7, (3, 2), (2, 1), (1, 0), 1),   # rectangular kernel, stride and padding
    (1, 16, 7, 7, 136, (3, 3), 1, 1, 2),           # Og = 68 > 64: two row tiles of version 2
    (1, 130, 5, 5, 134, (3, 3), 1, 1, 1),          # Cg, Og > 128: two row tiles of version 3
    (4, 24, 27, 27, 32, (5, 5), 1, 2, 2),          # AlexNet conv2 at 1/8 width: many tiles of both
]
CONV_IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}O{c[4]}k{c[5]}s{c[6]}p{c[7]}g{c[8]}" for c in CONV_CASES]


def conv_inputs(case):
    N, C, H, W, O, (kH, kW), stride, padding, groups = case
    return randn(N, C, H, W), randn(O, C // groups, kH, kW), randn(O), dict(
        stride=stride, padding=padding, groups=groups)


@pytest.mark.parametrize("version", launch.CONV_VERSIONS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_forward(emu, xp, case, version):
    x, w, b, kw = conv_inputs(case)
    y = cuda_kernels._conv2d_forward(xp, emu, xp.array(x), xp.array(w), xp.array(b), version=version,
                          chunk_floats=500, **kw)
    close(y, ref.conv2d_forward(x, w, b, **kw))


@pytest.mark.parametrize("version", launch.CONV_VERSIONS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_data(emu, xp, case, version):
    x, w, _, kw = conv_inputs(case)
    g = launch.conv_geometry(x.shape, w.shape, **kw)
    dy = randn(g.N, g.O, g.OH, g.OW)
    dx = cuda_kernels._conv2d_backward_data(xp, emu, xp.array(dy), xp.array(w), x.shape, version=version,
                                 chunk_floats=500, **kw)
    close(dx, ref.conv2d_backward_data(dy, w, x.shape, **kw))


@pytest.mark.parametrize("version", launch.CONV_VERSIONS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_weight(emu, xp, case, version):
    x, w, _, kw = conv_inputs(case)
    g = launch.conv_geometry(x.shape, w.shape, **kw)
    dy = randn(g.N, g.O, g.OH, g.OW)
    dw, db = cuda_kernels._conv2d_backward_weight(xp, emu, xp.array(x), xp.array(dy), w.shape,
                                       version=version, chunk_floats=500, **kw)
    close(dw, ref.conv2d_backward_weight(x, dy, w.shape, **kw))
    close(db, dy.astype(np.float64).sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("splits_wanted", [1, 3, 7])
def test_conv2d_backward_weight_split_k(emu, xp, version, splits_wanted):
    """Split-K over N*OH*OW, added by sum_partials: chunks of unequal length, the last partial."""
    case = (3, 4, 9, 9, 6, (3, 3), 1, 1, 2)
    x, w, _, kw = conv_inputs(case)
    g = launch.conv_geometry(x.shape, w.shape, **kw)
    dy = randn(g.N, g.O, g.OH, g.OW)
    BK = launch.CONV_TILES[version][2]
    r_per_split = ceil_div(ceil_div(g.N * g.P, splits_wanted), BK) * BK
    splits = ceil_div(g.N * g.P, r_per_split)
    out = xp.empty((g.O, g.Cg, 3, 3)) if splits == 1 else xp.empty((splits, g.O, g.K))
    emu(launch.conv2d_backward_weight(xp.array(x), xp.array(dy), out, g, version, splits, r_per_split))
    dw = out
    if splits > 1:
        dw = xp.empty((g.O, g.Cg, 3, 3))
        emu(launch.sum_partials(out, dw, splits))
    close(dw, ref.conv2d_backward_weight(x, dy, w.shape, **kw))


def test_conv2d_weight_splits_plan():
    g = launch.conv_geometry((128, 96, 27, 27), (256, 48, 5, 5), 1, 2, 2)  # AlexNet conv2
    for version in (2, 3):
        splits, r = launch.conv2d_weight_splits(g, version)
        assert splits * r >= g.N * g.P > (splits - 1) * r and r % launch.CONV_TILES[version][2] == 0
        tiles = ceil_div(g.Og, launch.CONV_TILES[version][0]) * ceil_div(g.K, launch.CONV_TILES[version][1]) * 2
        assert splits * tiles >= launch.TARGET_BLOCKS or splits == g.N * g.P // 1024


@pytest.mark.parametrize("order", list(ORDERS))
def test_conv2d_schedule_orders(emu, xp, order):
    """Same results whatever order the emulator runs a block's threads in (no barrier races)."""
    x, w, b, kw = conv_inputs(CONV_CASES[2])
    try:
        emu.set_order(order)
        for version in (2, 3):
            y = cuda_kernels._conv2d_forward(xp, emu, xp.array(x), xp.array(w), xp.array(b), version=version, **kw)
            close(y, ref.conv2d_forward(x, w, b, **kw))
    finally:
        emu.set_order("shuffle")


def test_im2col_col2im(emu, xp):
    case = CONV_CASES[4]
    x, w, _, kw = conv_inputs(case)
    g = launch.conv_geometry(x.shape, w.shape, **kw)
    cols = xp.empty((g.N, g.C * g.kH * g.kW, g.P))
    emu(launch.im2col(xp.array(x), cols, g))
    np.testing.assert_array_equal(cols, ref.im2col(x, (g.kH, g.kW), kw["stride"], kw["padding"]))
    c = randn(*cols.shape)
    dx = xp.empty(x.shape)
    emu(launch.col2im(xp.array(c), dx, g))
    close(dx, ref.col2im(c, x.shape, (g.kH, g.kW), kw["stride"], kw["padding"]))


def test_conv2d_empty_batch_and_bad_input(emu, xp):
    w = randn(4, 3, 3, 3)
    y = cuda_kernels._conv2d_forward(xp, emu, np.zeros((0, 3, 5, 5), np.float32), w, padding=1, version=3)
    assert y.shape == (0, 4, 5, 5)
    with pytest.raises(TypeError, match="float32"):
        cuda_kernels._conv2d_forward(xp, emu, np.zeros((1, 3, 5, 5)), w, version=3)
    with pytest.raises(ValueError, match="groups"):
        launch.conv_geometry((1, 3, 5, 5), (4, 3, 3, 3), groups=2)
    g = launch.conv_geometry((1, 3, 5, 5), (4, 3, 3, 3))
    with pytest.raises(ValueError, match="shape"):
        launch.conv2d_forward(xp.empty((1, 3, 5, 6)), xp.array(w), None, xp.empty((1, 4, 3, 3)), g)
    with pytest.raises(ValueError, match="contiguous"):
        launch.conv2d_forward(np.zeros((1, 3, 5, 10), np.float32)[..., ::2], w, None,
                         xp.empty((1, 4, 3, 3)), g)


# ---- local response normalisation -----------------------------------------------------------------
@pytest.mark.parametrize("size", [5, 4, 3, 1, 9])
@pytest.mark.parametrize("alpha,beta,k", [(1.0, 0.75, 2.0), (1e-4, 0.75, 1.0), (2.0, 0.5, 1.0)])
@pytest.mark.parametrize("shape", [(2, 7, 3, 5), (1, 3, 4, 4), (3, 16, 5, 7)])
def test_lrn(emu, xp, shape, size, alpha, beta, k):
    """Large alpha (1.0, 2.0) makes a wrong window visible; even sizes test PyTorch's padding."""
    x = randn(*shape)
    y, scale = cuda_kernels._lrn_forward(xp, emu, xp.array(x), size, alpha, beta, k)
    y_ref, s_ref = ref.lrn_forward(x, size, alpha, beta, k)
    close(scale, s_ref)
    close(y, y_ref)
    gy = randn(*shape)
    dx = cuda_kernels._lrn_backward(xp, emu, xp.array(x), scale, xp.array(gy), size, alpha, beta)
    close(dx, ref.lrn_backward(x, gy, size, alpha, beta, k), rtol=2e-4)


@pytest.mark.parametrize("size", [4, 5])
def test_lrn_reference_backward_is_the_gradient(size):
    """The oracle's backward formula against float64 central differences of its forward."""
    x = rng.standard_normal((1, 6, 2, 2))
    gy = rng.standard_normal(x.shape)
    dx = ref.lrn_backward(x, gy, size, alpha=1.0, beta=0.75, k=2.0)
    eps, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        f = lambda v: (ref.lrn_forward(v, size, 1.0, 0.75, 2.0)[0] * gy).sum()  # noqa: E731
        num[i] = (f(x + d) - f(x - d)) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


# ---- max-pooling ----------------------------------------------------------------------------------
# (shape, kernel, stride, padding, ceil_mode)
POOL_CASES = [
    ((2, 3, 13, 13), 3, 2, 0, False),    # AlexNet's overlapping 3/2
    ((1, 2, 8, 8), 3, 2, 0, True),       # ceil_mode adds a partial window (3 -> 4)
    ((1, 2, 8, 8), 3, 2, 0, False),
    ((2, 2, 7, 9), 2, 2, 0, False),      # 2/2, odd sizes (last row dropped)
    ((2, 2, 7, 9), 2, 2, 0, True),
    ((1, 3, 6, 5), 3, 2, 1, False),      # padding
    ((1, 3, 6, 5), 3, 2, 1, True),
    ((1, 1, 5, 6), (3, 2), (1, 2), (1, 0), False),  # rectangular
]


def tie_free(shape):
    """A shuffled arange: no two inputs equal, so the argmax is unique."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32) - 20.0


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", POOL_CASES)
def test_max_pool2d(emu, xp, shape, kernel, stride, padding, ceil_mode):
    x = tie_free(shape)
    y, arg = cuda_kernels._max_pool2d_forward(xp, emu, xp.array(x), kernel, stride, padding, ceil_mode)
    y_ref, arg_ref = ref.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    assert y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    gy = randn(*y.shape)
    gx = cuda_kernels._max_pool2d_backward(xp, emu, xp.array(gy), arg, shape, kernel, stride, padding)
    close(gx, ref.max_pool2d_backward(gy, arg_ref, shape))


def test_max_pool2d_ties_and_nan(emu, xp):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 2, 3] = np.nan
    y, arg = cuda_kernels._max_pool2d_forward(xp, emu, xp.array(x), 2, 2)
    np.testing.assert_array_equal(arg[0, 0], [[0, 2], [8, 11]])  # first max wins; NaN wins
    assert np.isnan(y[0, 0, 1, 1]) and (y[0, 0].ravel()[:3] == 0).all()
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)
    y, arg = cuda_kernels._max_pool2d_forward(xp, emu, xp.array(x), 3, 1)
    assert arg.item() == 0 and y.item() == -np.inf


def test_max_pool2d_output_sizes():
    assert launch.max_pool2d_output_shape((1, 1, 227, 227), 3, 2) == (1, 1, 113, 113)
    assert launch.max_pool2d_output_shape((1, 1, 55, 55), 3, 2) == (1, 1, 27, 27)
    assert launch.max_pool2d_output_shape((1, 1, 55, 55), 3, 2, ceil_mode=True) == (1, 1, 27, 27)
    assert launch.max_pool2d_output_shape((1, 1, 8, 8), 3, 2, ceil_mode=True) == (1, 1, 4, 4)
    assert launch.max_pool2d_output_shape((1, 1, 5, 5), 2, 2, 1, ceil_mode=True) == (1, 1, 3, 3)
    with pytest.raises(ValueError, match="padding <= kernel/2"):
        launch.max_pool2d_output_shape((1, 1, 8, 8), 3, 2, 2)


# ---- elementwise ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 5), (4, 600), (2, 3, 17, 19)])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_bias_act(emu, xp, shape, relu, bias):
    x, b = randn(*shape), randn(shape[1])
    y = cuda_kernels._bias_act(xp, emu, xp.array(x), xp.array(b) if bias else None, relu)
    close(y, ref.bias_act(x, b if bias else None, relu))
    gy = randn(*shape)
    gx, db = cuda_kernels._bias_act_backward(xp, emu, xp.array(gy), y, relu)
    gx_ref, db_ref = ref.bias_act_backward(gy, y, relu)
    if relu:
        close(gx, gx_ref)
    else:
        assert gx is None
    close(db, db_ref)


def test_bias_act_grid_strides(emu, xp):
    """Grids smaller than the work: the kernels' stride loops cover the rest."""
    x, b = randn(3, 5, 600), randn(5)
    y = xp.empty(x.shape)
    emu(launch.bias_act_forward(xp.array(x), xp.array(b), y, True, max_blocks=1, max_grid_y=2))
    close(y, ref.bias_act(x, b, True))
    for shape in [(7, 3, 11), (13, 600)]:
        gy, yy = randn(*shape), randn(*shape)
        C, chunks = shape[1], 3
        gx, partial, db = xp.empty(shape), xp.empty((chunks, C)), xp.empty((C,))
        emu(launch.bias_act_backward(xp.array(gy), xp.array(yy), gx, partial, True, chunks))
        emu(launch.sum_partials(partial, db, chunks))
        gx_ref, db_ref = ref.bias_act_backward(gy, yy, True)
        close(gx, gx_ref)
        close(db, db_ref)


@pytest.mark.parametrize("mask_dtype", [np.uint8, np.bool_])
def test_dropout(emu, xp, mask_dtype):
    x = randn(5, 300)
    mask = rng.random(x.shape) >= 0.5
    m = xp.array(mask, np.uint8) if mask_dtype is np.uint8 else mask
    y = xp.empty(x.shape)
    emu(launch.dropout_apply(xp.array(x), m, y, 0.5, max_blocks=2))
    close(y, x * mask / 0.5)
    close(cuda_kernels._dropout(xp, emu, xp.array(x), m, 0.25), x * mask / 0.75)


@pytest.mark.parametrize("N,K_", [(3, 1000), (5, 7), (1, 1), (2, 300)])
def test_softmax_cross_entropy(emu, xp, N, K_):
    logits = randn(N, K_) * 5
    logits[0, 0] += 1e4  # stability: exp would overflow without the max shift
    labels = rng.integers(0, K_, N)
    loss, probs = cuda_kernels._softmax_cross_entropy(xp, emu, xp.array(logits), labels)
    loss_ref, p_ref = ref.softmax_xent(logits, labels)
    close(probs, p_ref)
    close(loss, loss_ref)
    grad_loss = randn(N)
    gz = cuda_kernels._softmax_cross_entropy_backward(xp, emu, probs, labels, xp.array(grad_loss))
    close(gz, ref.softmax_xent_backward(p_ref, labels, grad_loss), rtol=2e-4)
    gz = cuda_kernels._softmax_cross_entropy_backward(xp, emu, probs, labels, 1.0 / N)
    close(gz, ref.softmax_xent_backward(p_ref, labels, np.full(N, 1.0 / N)), rtol=2e-4)


def test_softmax_cross_entropy_bad_label_is_nan(emu, xp):
    loss, _ = cuda_kernels._softmax_cross_entropy(xp, emu, xp.array(randn(2, 4)), np.array([1, 4]))
    assert np.isfinite(loss[0]) and np.isnan(loss[1])


def test_sgd_momentum(emu, xp):
    w0, g, v0 = randn(1000), randn(1000), randn(1000)
    w, v = xp.array(w0), xp.array(v0)
    emu(launch.sgd_momentum(w, xp.array(g), v, 0.01, 0.9, 0.0005, max_blocks=3))
    w_ref, v_ref = ref.sgd_momentum(w0, g, v0, 0.01, 0.9, 0.0005)
    close(v, v_ref)
    close(w, w_ref)


# ---- launch plumbing and the emulator itself ------------------------------------------------------
def test_empty_work_launches_nothing(xp):
    assert launch.lrn_forward(xp.empty((0, 3, 2, 2)), xp.empty((0, 3, 2, 2)), xp.empty((0, 3, 2, 2)), 5) is None
    assert launch.sgd_momentum(xp.empty((0,)), xp.empty((0,)), xp.empty((0,)), 0.1) is None
    assert launch.softmax_xent_forward(xp.empty((0, 5)), np.zeros(0, np.int64), xp.empty((0, 5)),
                                  xp.empty((0,))) is None


def test_every_kernel_has_typed_arguments(emu):
    """Each kernel's parameters are pointers, int, long long or float (what minialex.cuda.launch passes)."""
    for source, lib in emu.libs.items():
        for name in kernel_names(KERNEL_DIR / source):
            assert set(emu.signature(source, name)) <= set("pilf"), name


def test_emulator_catches_barrier_misuse_and_races(tmp_path):
    """A __syncthreads after an early return, divergent barriers, and a missing barrier."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    src = tmp_path / "bad.cu"
    src.write_text("""
extern "C" __global__ void early_return(float* out) {
    __shared__ float s[64];
    if (threadIdx.x == 3) return;
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}
extern "C" __global__ void divergent(float* out) {
    if (threadIdx.x < 32)
        __syncthreads();
    else
        __syncthreads();
    out[threadIdx.x] = 0.0f;
}
extern "C" __global__ void racy_reverse(float* out) {
    __shared__ float s[64];
    s[threadIdx.x] = (float)threadIdx.x;
    /* missing __syncthreads() */
    out[threadIdx.x] = s[63 - threadIdx.x];
}
""")
    so, proc = compile_emulated(src, tmp_path)
    log, _ = proc.communicate()
    assert proc.returncode == 0, log
    bad = Emulator({"bad.cu": ctypes.CDLL(str(so))})
    out = np.zeros(64, np.float32)
    with pytest.raises(AssertionError, match="returned while"):
        bad(launch.Launch("bad.cu", "early_return", (1, 1, 1), (64, 1, 1), 0, (out,)))
    with pytest.raises(AssertionError, match="different __syncthreads"):
        bad(launch.Launch("bad.cu", "divergent", (1, 1, 1), (64, 1, 1), 0, (out,)))
    for order in ORDERS:
        bad.set_order(order)
        out[:] = np.nan
        bad(launch.Launch("bad.cu", "racy_reverse", (1, 1, 1), (64, 1, 1), 0, (out,)))
        assert not np.array_equal(out, 63 - np.arange(64)), f"race not visible in {order} order"


# ---- the ops' GPU glue (minialex/functional/*: _conv2d_cuda, _lrn_cuda, _max_pool2d_cuda) ----------
# On a GPU, F.conv2d / F.local_response_norm / F.max_pool2d hand float32 CuPy tensors to
# minialex.cuda.kernels. Here the same glue runs on NumPy tensors with those functions bound to the
# emulator, and forward and gradients must equal the ops' CPU path: this checks the argument order,
# shapes and saved state of the glue without a GPU.
import minialex.functional as F  # noqa: E402  (used by the glue cases below)

GLUE = {"conv2d": ["conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight"],
        "local_response_norm": ["lrn_forward", "lrn_backward"],
        "max_pool2d": ["max_pool2d_forward", "max_pool2d_backward"]}


@pytest.fixture
def emulated_gpu_path(emu, monkeypatch):
    import functools
    import importlib

    from minialex.cuda import kernels as cuda_kernels
    for op, names in GLUE.items():
        module = importlib.import_module(f"minialex.functional.{op}")
        monkeypatch.setattr(module, "use_cuda_kernels", lambda x: x.dtype == np.float32)
        for name in names:
            monkeypatch.setattr(cuda_kernels, name, functools.partial(getattr(cuda_kernels, "_" + name), np, emu))
    return emu


def _forward_and_grads(fn, arrays):
    import minialex
    ts = [minialex.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    y.backward(np.random.default_rng(5).standard_normal(y.shape).astype(np.float32))
    return [y.data] + [t.grad for t in ts]


GLUE_CASES = {
    "conv2d-groups2-stride2-pad1": (lambda x, w, b: F.conv2d(x, w, b, 2, 1, 2),
                                    [(2, 4, 9, 7), (6, 2, 3, 3), (6,)]),
    "conv2d-batch1-pad2": (lambda x, w, b: F.conv2d(x, w, b, 1, 2, 1),
                           [(1, 3, 6, 5), (4, 3, 5, 5), (4,)]),
    "lrn-size4-alpha1": (lambda x: F.local_response_norm(x, 4, 1.0, 0.75, 2.0),
                         [(2, 7, 3, 5)]),
    "maxpool-3-2-ceil": (lambda x: F.max_pool2d(x, 3, 2, 1, True),
                         [(2, 3, 9, 8)]),
}


@pytest.mark.parametrize("case", list(GLUE_CASES), ids=list(GLUE_CASES))
def test_ops_gpu_glue_matches_cpu_path(request, case):
    fn, shapes = GLUE_CASES[case]
    r = np.random.default_rng(3)
    arrays = [r.permutation(int(np.prod(s))).reshape(s).astype(np.float32) / 10 if case.startswith("maxpool")
              else r.standard_normal(s).astype(np.float32) for s in shapes]       # tie-free for pooling
    cpu = _forward_and_grads(fn, arrays)
    emu = request.getfixturevalue("emulated_gpu_path")
    before = len(emu.launches)
    gpu = _forward_and_grads(fn, arrays)
    assert len(emu.launches) > before, "the GPU glue did not launch any kernel"
    for got, want in zip(gpu, cpu):
        close(got, want.astype(np.float64))
