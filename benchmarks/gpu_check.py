"""The Python steps of benchmarks/gpu_check.sh: is there a GPU, versions, NVRTC compile, kernels vs float64.

    python3 benchmarks/gpu_check.py probe          # one line; exit 3 and "no GPU: ..." without one
    python3 benchmarks/gpu_check.py versions       # driver, CUDA runtime, NVRTC, CuPy, PyTorch, cuDNN
    python3 benchmarks/gpu_check.py compile        # kernels/*.cu through NVRTC, every kernel looked up
    python3 benchmarks/gpu_check.py kernels        # every entry point of minialex.cuda.kernels, float32
                                                   # on the GPU against the float64 references
    python3 benchmarks/gpu_check.py kernels --cpu  # the same checks on the CPU emulator (g++, no GPU)

Runs from a source checkout with no install. ``kernels`` calls each entry point's implementation
``minialex.cuda.kernels._name(xp, run, ...)`` with xp = CuPy behind canaries (tests/
test_kernels_emulated.py's GuardedArrays: every output poisoned with NaN or a sentinel before the
launch, a guard zone around every array checked after it), and the first case of each entry point
once more through the public function itself. The oracles are tests/kernel_reference.py (float64,
on the CPU). Inputs: the emulated tests' small cases, and AlexNet's layer shapes at a small batch
(--shapes all, the default on a GPU). With --cpu the same cases run through the kernel emulator,
and with MINIALEX_FAKE_CUPY=1 and tests/fake_cupy on PYTHONPATH the GPU path runs on the test
suite's strict CuPy stand-in, so a bug in this check shows up without a GPU (``probe``, which the
shell script asks, never takes the stand-in for a GPU). Every check prints one line; the exit
status is 1 if any check failed, 3 if there is no GPU (or no CuPy).
"""
import argparse
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, NamedTuple

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))  # the checkout's minialex, the tests' oracles, bench_gpu
os.environ.setdefault("CUPY_TF32", "0")  # version 1 of conv (cuBLAS through CuPy) in true FP32

from minialex.cuda import kernels, launch  # noqa: E402
from minialex.cuda.sources import kernel_dir  # noqa: E402
import kernel_reference as ref  # noqa: E402
import test_kernels_emulated as emulated  # noqa: E402

NO_GPU = 3


# ---- is there a GPU -------------------------------------------------------------------------------
def gpu_status(allow_fake=False):
    """(True, "GPU: ...") or (False, "no GPU: why"), without raising.

    The test suite's CPU stand-in for CuPy (tests/fake_cupy, ``cupy.IS_FAKE``) is no GPU; with
    ``allow_fake`` (the steps, when MINIALEX_FAKE_CUPY=1) it is accepted, to test this check itself.
    """
    smi = shutil.which("nvidia-smi")
    smi_note = f"nvidia-smi at {smi}" if smi else "nvidia-smi not on PATH"
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CuPy that fails to load its CUDA libraries
        return False, f"no GPU: CuPy is not importable ({type(exc).__name__}: {exc}); {smi_note}"
    if getattr(cupy, "IS_FAKE", False):
        if not allow_fake:
            return False, (f"no GPU: the cupy found is minialex's CPU stand-in ({os.path.dirname(cupy.__file__)}); "
                           f"{smi_note}")
        return True, "CPU stand-in, not a GPU: CuPy is tests/fake_cupy (MINIALEX_FAKE_CUPY=1)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"no GPU: CuPy {cupy.__version__} cannot reach a CUDA device ({exc}); {smi_note}"
    if count == 0:
        return False, f"no GPU: CuPy {cupy.__version__} sees 0 CUDA devices; {smi_note}"
    name = _text(cupy.cuda.runtime.getDeviceProperties(0)["name"])
    return True, f"GPU: {count} device(s), device 0 {name}; CuPy {cupy.__version__}; {smi_note}"


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def fake_allowed():
    return os.environ.get("MINIALEX_FAKE_CUPY") == "1"


def probe(args):
    ok, line = gpu_status()  # the stand-in never passes for a GPU here: the shell script stops
    print(f"gpu_check: {line}", flush=True)
    return 0 if ok else NO_GPU


# ---- versions -------------------------------------------------------------------------------------
def _cuda_version(v):
    return f"{v // 1000}.{v % 1000 // 10}"


def versions(args):
    """Print every version that matters, each guarded: a failure prints FAILED and sets status 1."""
    failed = []

    def show(what, fn):
        try:
            print(f"{what}: {fn()}", flush=True)
        except Exception as exc:
            failed.append(what)
            print(f"{what}: FAILED ({type(exc).__name__}: {exc})", flush=True)

    def nvidia_smi():
        if shutil.which("nvidia-smi") is None:
            return "nvidia-smi not on PATH"
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        return (out.stdout.strip() or out.stderr.strip()).replace("\n", "; ")

    def device():
        props = cupy.cuda.runtime.getDeviceProperties(0)
        return (f"{_text(props['name'])}, compute capability {props['major']}.{props['minor']}, "
                f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB")

    import cupy
    show("python", lambda: f"{platform.python_version()} ({sys.executable}), numpy {np.__version__}")
    show("nvidia-smi (name, driver, memory, compute capability)", nvidia_smi)
    show("CUDA driver API", lambda: _cuda_version(cupy.cuda.runtime.driverGetVersion()))
    show("CUDA runtime (CuPy)", lambda: _cuda_version(cupy.cuda.runtime.runtimeGetVersion()))
    show("NVRTC", lambda: ".".join(map(str, cupy.cuda.nvrtc.getVersion())))
    show("CuPy", lambda: f"{cupy.__version__} ({os.path.dirname(cupy.__file__)})")
    show("device 0 (CuPy)", device)

    def torch_versions():
        import torch
        return (f"{torch.__version__}, built for CUDA {torch.version.cuda}, cuda available "
                f"{torch.cuda.is_available()}, device {torch.cuda.get_device_name()}")

    def cudnn_versions():
        import torch
        import bench_gpu
        dnn = bench_gpu.CuDNN()
        return (f"{torch.backends.cudnn.version()} through PyTorch; {dnn.version()} through ctypes "
                f"from {', '.join(dnn.where)}")

    show("PyTorch", torch_versions)
    show("cuDNN", cudnn_versions)
    show("cupy.show_config()", lambda: cupy.show_config() or "(above)")
    for module in ("pytest", "xdist", "pytest_timeout"):  # for step 4; informational
        try:
            print(f"{module}: {getattr(__import__(module), '__version__', 'installed')}", flush=True)
        except ImportError:
            print(f"{module}: not installed", flush=True)
    return 1 if failed else 0


# ---- compile --------------------------------------------------------------------------------------
def compile_kernels(args):
    """Compile each kernels/*.cu with NVRTC as minialex does (kernels._module) and look up every kernel."""
    failed = 0
    for path in sorted(kernel_dir().glob("*.cu")):
        names = emulated.kernel_names(path)
        t0 = time.perf_counter()
        try:
            kernels._module(path.name).compile()
        except Exception as exc:
            failed += 1
            print(f"FAIL {path.name}: NVRTC ({kernels.NVRTC_OPTIONS}): {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"ok   {path.name}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        if not names:
            failed += 1
            print(f"FAIL {path.name}: no extern \"C\" __global__ kernel found in the source", flush=True)
        for name in names:
            try:
                kernels._function(path.name, name)
                print(f"ok   {path.name}: {name}", flush=True)
            except Exception as exc:
                failed += 1
                print(f"FAIL {path.name}: {name}: {type(exc).__name__}: {exc}", flush=True)
    print(f"compile: {failed} failure(s)", flush=True)
    return 1 if failed else 0


# ---- kernels against the float64 references -------------------------------------------------------
class Compare(NamedTuple):
    what: str
    out: object          # device (or host) array from the kernel
    expected: object     # float64 (or exact) reference, NumPy
    rtol: float = 1e-4
    exact: bool = False  # max-pool values and argmax: bit-exact


class Case(NamedTuple):
    entry: str                              # the minialex.cuda.kernels entry point it checks
    label: str
    run: Callable                           # run(api) -> [Compare]


class GuardedAPI:
    """Entry points as implementations on a guarded array module (poison and canaries)."""
    kind = "guarded"

    def __init__(self, module, run, synchronize=lambda: None):
        self.module, self.runner, self.synchronize = module, run, synchronize
        self.xp = emulated.GuardedArrays(module)
        self.get = getattr(module, "asnumpy", np.asarray)

    def call(self, entry, *args, **kwargs):
        return getattr(kernels, "_" + entry)(self.xp, self.runner, *args, **kwargs)

    def put(self, a, dtype=None):
        a = np.asarray(a)
        dtype = np.dtype(dtype or a.dtype)
        if dtype == np.bool_:  # no canary for bool: a plain device copy
            return self.module.asarray(a)
        return self.xp.array(a.astype(dtype, copy=False), dtype)

    def check(self):
        self.xp.check()


class PublicAPI:
    """Entry points as the public CuPy functions of minialex.cuda.kernels (GPU only)."""
    kind = "public"

    def __init__(self, cupy):
        self.cupy = cupy
        self.get = cupy.asnumpy

    def call(self, entry, *args, **kwargs):
        return getattr(kernels, entry)(*args, **kwargs)

    def put(self, a, dtype=None):
        return self.cupy.asarray(np.asarray(a, dtype=dtype))

    def synchronize(self):
        self.cupy.cuda.Device().synchronize()

    def check(self):
        pass


def entry_points():
    """Public names of minialex.cuda.kernels that wrap an implementation ``_name(xp, run, ...)``."""
    return sorted(n for n in vars(kernels) if not n.startswith("_") and callable(getattr(kernels, "_" + n, None)))


_rng = np.random.default_rng(2026)


def randn(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


def tie_free(shape):
    """A shuffled arange minus 20: no two inputs equal, so the argmax is unique."""
    return _rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32) - 20.0


# (N, C, H, W, O, kernel, stride, padding, groups): AlexNet's layers at a small batch
MEDIUM_CONVS = [
    (2, 3, 227, 227, 96, (11, 11), 4, 0, 1),
    (4, 96, 27, 27, 256, (5, 5), 1, 2, 2),
    (4, 256, 13, 13, 384, (3, 3), 1, 1, 1),
    (4, 384, 13, 13, 384, (3, 3), 1, 1, 2),
    (4, 384, 13, 13, 256, (3, 3), 1, 1, 2),
]
MEDIUM_POOLS = [((4, 96, 55, 55), 3, 2, 0, False), ((4, 256, 13, 13), 3, 2, 0, True)]
# (shape, size, alpha, beta, k): large alpha makes a wrong window visible; AlexNet's own last
SMALL_LRNS = [((2, 7, 3, 5), 5, 1.0, 0.75, 2.0), ((1, 3, 4, 4), 4, 2.0, 0.5, 1.0), ((3, 16, 5, 7), 9, 1.0, 0.75, 1.0)]
MEDIUM_LRNS = [((4, 96, 55, 55), 5, 1e-4, 0.75, 2.0), ((4, 256, 27, 27), 5, 1.0, 0.75, 2.0)]
SMALL_ACTS, MEDIUM_ACTS = [(3, 5), (2, 3, 4, 5), (4, 600), (2, 3, 17, 19)], [(64, 4096), (8, 96, 55, 55)]
SMALL_LOGITS, MEDIUM_LOGITS = [(3, 1000), (5, 7), (1, 1), (2, 300)], [(128, 1000)]
SMALL_PARAMS, MEDIUM_PARAMS = [1000, 1], [4096 * 9216 // 8]


def conv_label(case):
    N, C, H, W, O, k, s, p, g = case
    return f"N{N}C{C}H{H}W{W}O{O}k{k}s{s}p{p}g{g}"


def conv_cases(convs, chunk_floats):
    """Forward, backward-data and backward-weight of each case in every version; the inputs and the
    float64 references of a case are drawn and computed once and shared by the three versions."""
    memo = {}

    def once(key, make):
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def forward(case, extra, api):
        N, C, H, W, O, (kH, kW), s, p, g = case

        def make():
            x, w, b = randn(N, C, H, W), randn(O, C // g, kH, kW), randn(O)
            return x, w, b, ref.conv2d_forward(x, w, b, s, p, g)
        x, w, b, y_ref = once(("fwd", case), make)
        y = api.call("conv2d_forward", api.put(x), api.put(w), api.put(b), stride=s, padding=p, groups=g, **extra)
        return [Compare("y", y, y_ref)]

    def backward_data(case, extra, api):
        N, C, H, W, O, (kH, kW), s, p, g = case

        def make():
            geo = launch.conv_geometry((N, C, H, W), (O, C // g, kH, kW), s, p, g)
            dy, w = randn(N, O, geo.OH, geo.OW), randn(O, C // g, kH, kW)
            return dy, w, ref.conv2d_backward_data(dy, w, (N, C, H, W), s, p, g)
        dy, w, dx_ref = once(("bwd_data", case), make)
        dx = api.call("conv2d_backward_data", api.put(dy), api.put(w), (N, C, H, W), stride=s, padding=p,
                      groups=g, **extra)
        return [Compare("dx", dx, dx_ref)]

    def backward_weight(case, extra, api):
        N, C, H, W, O, (kH, kW), s, p, g = case

        def make():
            geo = launch.conv_geometry((N, C, H, W), (O, C // g, kH, kW), s, p, g)
            x, dy = randn(N, C, H, W), randn(N, O, geo.OH, geo.OW)
            return (x, dy, ref.conv2d_backward_weight(x, dy, (O, C // g, kH, kW), s, p, g),
                    dy.astype(np.float64).sum(axis=(0, 2, 3)))
        x, dy, dw_ref, db_ref = once(("bwd_weight", case), make)
        dw, db = api.call("conv2d_backward_weight", api.put(x), api.put(dy), (O, C // g, kH, kW), stride=s,
                          padding=p, groups=g, **extra)
        return [Compare("dw", dw, dw_ref), Compare("db", db, db_ref)]

    cases = []
    for case in convs:
        for v in launch.CONV_VERSIONS:
            extra = dict(version=v, **({"chunk_floats": chunk_floats} if chunk_floats else {}))
            label = f"{conv_label(case)} v{v}"
            for entry, fn in (("conv2d_forward", forward), ("conv2d_backward_data", backward_data),
                              ("conv2d_backward_weight", backward_weight)):
                cases.append(Case(entry, label, lambda api, fn=fn, case=case, extra=extra: fn(case, extra, api)))
    return cases


def lrn_cases(lrns):
    def forward(shape, size, alpha, beta, k, api):
        x = randn(*shape)
        y, scale = api.call("lrn_forward", api.put(x), size, alpha, beta, k)
        y_ref, s_ref = ref.lrn_forward(x, size, alpha, beta, k)
        return [Compare("y", y, y_ref), Compare("scale", scale, s_ref)]

    def backward(shape, size, alpha, beta, k, api):
        x, gy = randn(*shape), randn(*shape)
        scale = ref.lrn_forward(x, size, alpha, beta, k)[1].astype(np.float32)
        dx = api.call("lrn_backward", api.put(x), api.put(scale), api.put(gy), size, alpha, beta)
        return [Compare("dx", dx, ref.lrn_backward(x, gy, size, alpha, beta, k), rtol=2e-4)]

    cases = []
    for c in lrns:
        shape, size, alpha, beta, k = c
        label = f"{shape} size {size} alpha {alpha} beta {beta} k {k}"
        cases.append(Case("lrn_forward", label, lambda api, c=c: forward(*c, api)))
        cases.append(Case("lrn_backward", label, lambda api, c=c: backward(*c, api)))
    return cases


def pool_cases(pools):
    def forward(shape, kernel, stride, padding, ceil_mode, api):
        x = tie_free(shape)
        y, arg = api.call("max_pool2d_forward", api.put(x), kernel, stride, padding, ceil_mode)
        y_ref, arg_ref = ref.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
        return [Compare("y", y, y_ref, exact=True), Compare("argmax", arg, arg_ref, exact=True)]

    def backward(shape, kernel, stride, padding, ceil_mode, api):
        _, arg = ref.max_pool2d_forward(tie_free(shape), kernel, stride, padding, ceil_mode)
        gy = randn(*arg.shape)
        gx = api.call("max_pool2d_backward", api.put(gy), api.put(arg, np.int32), shape, kernel, stride, padding)
        return [Compare("gx", gx, ref.max_pool2d_backward(gy, arg, shape))]

    return [Case(entry, f"{c[0]} kernel {c[1]} stride {c[2]} padding {c[3]} ceil_mode {c[4]}",
                 lambda api, fn=fn, c=c: fn(*c, api))
            for c in pools for entry, fn in (("max_pool2d_forward", forward), ("max_pool2d_backward", backward))]


def elementwise_cases(acts, logits, params):
    cases = []

    def bias_act(shape, relu, bias, api):
        x, b = randn(*shape), randn(shape[1])
        y = api.call("bias_act", api.put(x), api.put(b) if bias else None, relu)
        return [Compare("y", y, ref.bias_act(x, b if bias else None, relu))]

    def bias_act_backward(shape, relu, bias, api):
        y = ref.bias_act(randn(*shape), randn(shape[1]), relu).astype(np.float32)
        gy = randn(*shape)
        gx, db = api.call("bias_act_backward", api.put(gy), api.put(y), relu)
        gx_ref, db_ref = ref.bias_act_backward(gy, y, relu)
        if not relu and gx is not None:
            raise AssertionError("bias_act_backward without relu must return gx None")
        return ([Compare("gx", gx, gx_ref)] if relu else []) + [Compare("db", db, db_ref)]

    for shape in acts:
        for relu in (True, False):
            for bias in (True, False):
                label = f"{shape} relu {relu} bias {bias}"
                cases.append(Case("bias_act", label, lambda api, c=(shape, relu, bias): bias_act(*c, api)))
            cases.append(Case("bias_act_backward", f"{shape} relu {relu}",
                              lambda api, c=(shape, relu, True): bias_act_backward(*c, api)))

    def dropout(shape, mask_dtype, p, api):
        x = randn(*shape)
        mask = _rng.random(shape) >= p
        y = api.call("dropout", api.put(x), api.put(mask, mask_dtype), p)
        return [Compare("y", y, x.astype(np.float64) * mask / (1 - p))]

    for shape in acts[-2:]:
        for mask_dtype, p in ((np.uint8, 0.5), (np.bool_, 0.25)):
            cases.append(Case("dropout", f"{shape} mask {np.dtype(mask_dtype).name} p {p}",
                              lambda api, c=(shape, mask_dtype, p): dropout(*c, api)))

    def softmax_xent(N, K, api):
        z = randn(N, K) * 5
        z[0, 0] += 1e4  # an exp that would overflow without the max shift
        labels = _rng.integers(0, K, N)
        loss, probs = api.call("softmax_cross_entropy", api.put(z), api.put(labels, np.int64))
        loss_ref, p_ref = ref.softmax_xent(z, labels)
        return [Compare("loss", loss, loss_ref), Compare("probs", probs, p_ref)]

    def softmax_xent_backward(N, K, api):
        probs = ref.softmax_xent(randn(N, K) * 5, np.zeros(N, np.int64))[1].astype(np.float32)
        labels = _rng.integers(0, K, N)
        grad_loss = randn(N)
        gz = api.call("softmax_cross_entropy_backward", api.put(probs), api.put(labels, np.int64), api.put(grad_loss))
        gz_mean = api.call("softmax_cross_entropy_backward", api.put(probs), api.put(labels, np.int64), 1.0 / N)
        return [Compare("gz", gz, ref.softmax_xent_backward(probs, labels, grad_loss), rtol=2e-4),
                Compare("gz (scalar grad_loss)", gz_mean,
                        ref.softmax_xent_backward(probs, labels, np.full(N, 1.0 / N)), rtol=2e-4)]

    for N, K in logits:
        cases.append(Case("softmax_cross_entropy", f"N {N} K {K}", lambda api, c=(N, K): softmax_xent(*c, api)))
        cases.append(Case("softmax_cross_entropy_backward", f"N {N} K {K}",
                          lambda api, c=(N, K): softmax_xent_backward(*c, api)))

    def sgd(n, api):
        w0, g, v0 = randn(n), randn(n), randn(n)
        w_ref, v_ref = ref.sgd_momentum(w0, g, v0, 0.01, 0.9, 0.0005)  # before w and v change in place
        w, v = api.put(w0.copy()), api.put(v0.copy())
        w, v = api.call("sgd_momentum_", w, api.put(g), v, 0.01, 0.9, 0.0005)
        return [Compare("w", w, w_ref), Compare("v", v, v_ref)]

    for n in params:
        cases.append(Case("sgd_momentum_", f"{n} parameters", lambda api, n=n: sgd(n, api)))
    return cases


def all_cases(shapes="all", chunk_floats=500):
    """Small cases (the emulated tests' shapes) and, with shapes="all", AlexNet-sized ones."""
    medium = shapes == "all"
    cases = conv_cases(emulated.CONV_CASES, chunk_floats)
    cases += conv_cases(MEDIUM_CONVS, None) if medium else []
    cases += lrn_cases(SMALL_LRNS + (MEDIUM_LRNS if medium else []))
    cases += pool_cases(emulated.POOL_CASES + (MEDIUM_POOLS if medium else []))
    cases += elementwise_cases(SMALL_ACTS + (MEDIUM_ACTS if medium else []),
                               SMALL_LOGITS + (MEDIUM_LOGITS if medium else []),
                               SMALL_PARAMS + (MEDIUM_PARAMS if medium else []))
    return cases


def compare(c, get):
    """(max |out - ref| / max |ref|, None) or (that or None, what is wrong)."""
    if c.out is None:
        return None, f"{c.what}: no output"
    out = np.asarray(get(c.out))
    expected = np.asarray(c.expected)
    if out.shape != expected.shape:
        return None, f"{c.what}: shape {out.shape}, expected {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    err = float(np.abs(out.astype(np.float64) - expected).max(initial=0.0)) / scale
    if c.exact:
        bad = int((out != expected).sum())
        return err, (f"{c.what}: {bad} of {out.size} elements differ (must be exact)" if bad else None)
    try:
        emulated.close(out, expected, rtol=c.rtol)
    except AssertionError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "mismatch")
        lines = [ln.strip() for ln in str(exc).splitlines() if "Mismatched" in ln or "Max" in ln]
        return err, f"{c.what}: " + "; ".join(lines or [first])
    return err, None


def run_cases(cases, make_api, public_api=None, log=print, every_entry=True):
    """Run every case (and, with public_api, the first case of each entry point through it too).
    Returns the number of failures; with every_entry, an entry point without a case is one."""
    failures, seen = 0, set()
    for case in cases:
        apis = [make_api()]
        if public_api is not None and case.entry not in seen:
            apis.append(public_api)
        seen.add(case.entry)
        for api in apis:
            t0 = time.perf_counter()
            problems, errs = [], []
            try:
                comparisons = case.run(api)
                api.synchronize()
                for c in comparisons:
                    err, problem = compare(c, api.get)
                    errs.append(err or 0.0)
                    if problem:
                        problems.append(problem)
                api.check()
            except Exception as exc:  # a launch error, a bad argument, a canary overwritten
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                problems.append(f"{type(exc).__name__}: {exc} (at {os.path.basename(tb.filename)}:{tb.lineno})")
            ms = (time.perf_counter() - t0) * 1e3
            err_s = f"max err {max(errs):.1e}" if errs else "no output checked"
            status = "FAIL" if problems else "ok  "
            log(f"{status} {case.entry} [{api.kind}] {case.label}: {err_s} ({ms:.0f} ms)"
                + ("".join(f"\n       {p}" for p in problems)))
            failures += bool(problems)
    for entry in sorted(set(entry_points()) - seen if every_entry else ()):
        failures += 1
        log(f"FAIL {entry}: no check for this entry point of minialex.cuda.kernels")
    log(f"kernels: {len(cases)} cases over {len(seen)} entry points, {failures} failure(s)")
    return failures


def select(cases, only):
    """The cases whose entry point and label contain one of the texts ``only`` (all for None)."""
    return [c for c in cases if only is None or any(text in f"{c.entry} {c.label}" for text in only)]


def check_kernels(args):
    if args.cpu:
        if shutil.which("g++") is None:
            print("gpu_check: error: --cpu needs g++ for the kernel emulator", file=sys.stderr)
            return 2
        tmp = tempfile.mkdtemp(prefix="gpu_check_emu_")
        try:
            emu = emulated.build_emulator(pathlib.Path(tmp))
            failures = run_cases(select(all_cases(args.shapes or "small"), args.only), lambda: GuardedAPI(np, emu),
                                 log=lambda line: print(line, flush=True), every_entry=args.only is None)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1 if failures else 0
    ok, line = gpu_status(allow_fake=fake_allowed())
    if not ok:
        print(f"gpu_check: {line}", file=sys.stderr)
        return NO_GPU
    print(f"gpu_check: {line}", flush=True)
    import cupy
    sync = cupy.cuda.Device().synchronize
    failures = run_cases(select(all_cases(args.shapes or "all"), args.only), lambda: GuardedAPI(cupy, kernels.run, sync),
                         public_api=PublicAPI(cupy), log=lambda line: print(line, flush=True),
                         every_entry=args.only is None)
    return 1 if failures else 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    p = _Parser(prog="gpu_check.py", description=__doc__.split("\n")[0], epilog=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP", parser_class=_Parser)
    sub.add_parser("probe", help="is there a GPU (exit 3 if not)").set_defaults(func=probe)
    sub.add_parser("versions", help="driver, CUDA, NVRTC, CuPy, PyTorch, cuDNN").set_defaults(func=versions)
    sub.add_parser("compile", help="NVRTC-compile kernels/*.cu, look up every kernel").set_defaults(func=compile_kernels)
    k = sub.add_parser("kernels", help="every kernel entry point in float32 against float64")
    k.add_argument("--cpu", action="store_true", help="on the CPU emulator instead of the GPU (needs g++)")
    k.add_argument("--shapes", choices=("small", "all"), default=None,
                   help="small: the emulated tests' shapes; all: also AlexNet's layers at a small batch "
                        "(default: all on the GPU, small with --cpu)")
    k.add_argument("--only", metavar="TEXT", nargs="+", default=None,
                   help="only the cases whose entry point and label contain one of the TEXTs "
                        "(e.g. lrn_backward 'v3')")
    k.set_defaults(func=check_kernels)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.step in ("versions", "compile"):
        ok, line = gpu_status(allow_fake=fake_allowed())
        if not ok:
            print(f"gpu_check: {line}", file=sys.stderr)
            return NO_GPU
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
