"""Launch configurations of minialex's CUDA kernels, in pure Python (no CuPy here).

Each function below takes the arrays of one kernel call (NumPy or CuPy: only ``.shape``,
``.dtype`` and ``.flags`` are read), checks them, and returns a :class:`Launch`: the kernel's file
and name, the grid, the block, the dynamic shared memory (always 0: the kernels use static shared
arrays) and the argument tuple in the kernel's parameter order, every scalar typed
(``np.int32``, ``np.int64``, ``np.float32``: CuPy would pass a Python float as ``double``).

The CuPy path (:mod:`minialex.cuda.kernels`) launches exactly these on a GPU, and the CPU emulation
tests (tests/test_kernels_emulated.py) run the same launches through kernels/emu/cuda_emu.h, so the
grid arithmetic and the argument lists are tested on machines without a GPU.

A function returns ``None`` when there is nothing to launch (an empty grid): a CUDA grid of size 0
is an error, and CuPy would run one block anyway.
"""
from typing import NamedTuple

import numpy as np

from ..shapes import ceil_div, conv_output_size, pair, pool_output_size

THREADS = 256          # threads of every 1-D kernel (MINIALEX_THREADS in kernels/common.cuh)
MAX_GRID_X = 2**31 - 1
MAX_GRID_YZ = 65535
DEFAULT_MAX_BLOCKS = 4096    # cap for grid-stride kernels (H100: 132 SMs x 8 blocks of 256 = 1056)
TARGET_BLOCKS = 264          # ~2 waves of blocks on a 132-SM H100: goal of the split-K heuristics

# Implicit-GEMM tiles of kernels/conv2d.cu (BM, BN, BK, threads): must match TileV2 / TileV3 there.
CONV_TILES = {2: (64, 64, 16, 256), 3: (128, 128, 8, 256)}
CONV_VERSIONS = (1, 2, 3)


class Launch(NamedTuple):
    source: str        # file in kernels/, e.g. "lrn.cu"
    kernel: str        # its extern "C" name
    grid: tuple        # (x, y, z)
    block: tuple       # (x, y, z)
    shared_mem: int    # dynamic shared memory in bytes
    args: tuple        # arrays and typed scalars, in the kernel's parameter order


# ---- argument checks ------------------------------------------------------------------------------
def _i32(value, what):
    value = int(value)
    if not -2**31 <= value < 2**31:
        raise ValueError(f"{what} = {value} does not fit a 32-bit int")
    return np.int32(value)


def _check(a, name, dtype=np.float32, shape=None, ndim=None):
    """Check that ``a`` is a C-contiguous array of ``dtype`` (and ``shape`` / ``ndim``)."""
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    if np.dtype(a.dtype) not in [np.dtype(d) for d in dtypes]:
        want = " or ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must be {want}, got {np.dtype(a.dtype).name}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (the kernels ignore strides)")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(a.shape)}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(a.shape)}")
    return a


def _launch(source, kernel, grid, threads, args):
    """A Launch, or None when the grid is empty (nothing to do)."""
    grid = tuple(int(v) for v in grid)
    if min(grid) <= 0:
        return None
    if grid[0] > MAX_GRID_X or grid[1] > MAX_GRID_YZ or grid[2] > MAX_GRID_YZ:
        raise ValueError(f"grid {grid} of {kernel} exceeds CUDA's limits")
    return Launch(source, kernel, grid, (threads, 1, 1), 0, tuple(args))


def _grid_1d(total, max_blocks=MAX_GRID_X):
    return (min(ceil_div(total, THREADS), max_blocks), 1, 1)


# ---- convolution ----------------------------------------------------------------------------------
class ConvGeometry(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    O: int
    kH: int
    kW: int
    sH: int
    sW: int
    pH: int
    pW: int
    OH: int
    OW: int
    groups: int

    @property
    def Cg(self):  # input channels per group
        return self.C // self.groups

    @property
    def Og(self):  # output channels per group
        return self.O // self.groups

    @property
    def K(self):   # reduction length of the forward GEMM: Cg * kH * kW
        return self.Cg * self.kH * self.kW

    @property
    def P(self):   # output pixels per image
        return self.OH * self.OW

    def args(self):
        """The 14 trailing int32 arguments of every implicit-GEMM conv kernel (CONV_GEOM_PARAMS)."""
        return tuple(_i32(v, f) for v, f in zip(self, self._fields))


def conv_geometry(x_shape, w_shape, stride=1, padding=0, groups=1):
    """Check a convolution's shapes and return its :class:`ConvGeometry`.

    x (N, C, H, W), w (O, C/groups, kH, kW); OH = (H + 2 pH - kH) // sH + 1 (same for W).
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"conv2d expects x (N, C, H, W) and w (O, C/groups, kH, kW), "
                         f"got {tuple(x_shape)} and {tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    O, Cg, kH, kW = (int(v) for v in w_shape)
    (sH, sW), (pH, pW) = pair(stride, "stride"), pair(padding, "padding", minimum=0)
    groups = int(groups)
    if groups < 1 or C % groups or O % groups:
        raise ValueError(f"groups={groups} must divide C={C} and O={O}")
    if Cg != C // groups:
        raise ValueError(f"w has {Cg} input channels, expected C/groups = {C // groups}")
    if min(kH, kW) < 1:
        raise ValueError(f"kernel {kH}x{kW} must be at least 1x1")
    OH, OW = conv_output_size(H, kH, sH, pH), conv_output_size(W, kW, sW, pW)
    if OH < 1 or OW < 1:
        raise ValueError(f"kernel {kH}x{kW} larger than the padded input {H + 2*pH}x{W + 2*pW}")
    g = ConvGeometry(N, C, H, W, O, kH, kW, sH, sW, pH, pW, OH, OW, groups)
    for what, v in (("x.size", N * C * H * W), ("y.size", N * O * OH * OW),
                    ("w.size", O * g.K)):
        _i32(v, what)  # the implicit-GEMM kernels index with 32-bit ints
    return g


def _conv_tile(version):
    if version not in CONV_TILES:
        raise ValueError(f"implicit-GEMM conv versions are {sorted(CONV_TILES)}, got {version}")
    return CONV_TILES[version]


def default_conv_version(g):
    """Provisional choice until the GPU benchmark decides: the big tile when M fills it."""
    return 3 if g.Og > 64 else 2


def conv2d_forward(x, w, b, y, g, version=3):
    """y = conv(x, w) + b with conv2d_fwd_v{2,3}. ``b`` may be None. Grid (n tiles, m tiles, groups)."""
    BM, BN, _, threads = _conv_tile(version)
    _check(x, "x", shape=(g.N, g.C, g.H, g.W))
    _check(w, "w", shape=(g.O, g.Cg, g.kH, g.kW))
    _check(y, "y", shape=(g.N, g.O, g.OH, g.OW))
    if b is not None:
        _check(b, "b", shape=(g.O,))
    grid = (ceil_div(g.N * g.P, BN), ceil_div(g.Og, BM), g.groups)
    args = (x, w, b if b is not None else w, y, np.int32(b is not None)) + g.args()
    return _launch("conv2d.cu", f"conv2d_fwd_v{version}", grid, threads, args)


def conv2d_backward_data(dy, w, dx, g, version=3):
    """dx = conv_transpose(dy, w) with conv2d_bwd_data_v{2,3}: a gather, every dx element written once."""
    BM, BN, _, threads = _conv_tile(version)
    _check(dy, "dy", shape=(g.N, g.O, g.OH, g.OW))
    _check(w, "w", shape=(g.O, g.Cg, g.kH, g.kW))
    _check(dx, "dx", shape=(g.N, g.C, g.H, g.W))
    grid = (ceil_div(g.N * g.H * g.W, BN), ceil_div(g.Cg, BM), g.groups)
    return _launch("conv2d.cu", f"conv2d_bwd_data_v{version}", grid, threads, (dy, w, dx) + g.args())


def conv2d_weight_splits(g, version=3, target_blocks=TARGET_BLOCKS, min_per_split=1024):
    """Split-K plan of the weight gradient: (splits, r_per_split).

    The reduction runs over R = N*OH*OW; with few (m, n) tiles it is cut into ``splits`` chunks of
    ``r_per_split`` (a multiple of the K tile), so that about ``target_blocks`` blocks run.
    """
    BM, BN, BK, _ = _conv_tile(version)
    R = g.N * g.P
    tiles = ceil_div(g.Og, BM) * ceil_div(g.K, BN) * g.groups
    splits = max(1, min(ceil_div(target_blocks, tiles), R // min_per_split,
                        MAX_GRID_YZ // g.groups))
    r_per_split = ceil_div(ceil_div(max(R, 1), splits), BK) * BK
    splits = max(1, ceil_div(R, r_per_split))  # no empty split
    return splits, r_per_split


def conv2d_backward_weight(x, dy, out, g, version=3, splits=1, r_per_split=None):
    """Weight gradient with conv2d_bwd_weight_v{2,3}.

    ``out`` is dw (O, Cg, kH, kW) when ``splits`` == 1, else a workspace (splits, O, Cg*kH*kW)
    whose slices :func:`sum_partials` adds into dw. Grid (n tiles, m tiles, groups * splits).
    """
    BM, BN, BK, threads = _conv_tile(version)
    _check(x, "x", shape=(g.N, g.C, g.H, g.W))
    _check(dy, "dy", shape=(g.N, g.O, g.OH, g.OW))
    R = g.N * g.P
    if r_per_split is None:
        r_per_split = ceil_div(max(R, 1), splits * BK) * BK
    if splits < 1 or r_per_split % BK or splits * r_per_split < R:
        raise ValueError(f"splits={splits} x r_per_split={r_per_split} must cover N*OH*OW={R} "
                         f"in multiples of {BK}")
    if splits == 1:
        _check(out, "dw", shape=(g.O, g.Cg, g.kH, g.kW))
    else:
        _check(out, "workspace", shape=(splits, g.O, g.K))
        _i32(splits * g.O * g.K, "workspace size")
    grid = (ceil_div(g.K, BN), ceil_div(g.Og, BM), g.groups * splits)
    args = (x, dy, out, _i32(splits, "splits"), _i32(r_per_split, "r_per_split")) + g.args()
    return _launch("conv2d.cu", f"conv2d_bwd_weight_v{version}", grid, threads, args)


def im2col(x, cols, g):
    """cols (n, C*kH*kW, OH*OW) of the images x (n, C, H, W) (a chunk of the batch): im2col_v1."""
    n = _check(x, "x", ndim=4).shape[0]
    _check(x, "x", shape=(n, g.C, g.H, g.W))
    _check(cols, "cols", shape=(n, g.C * g.kH * g.kW, g.P))
    args = (x, cols, _i32(n, "n_images"), *_geom_v1(g))
    return _launch("conv2d.cu", "im2col_v1", _grid_1d(n * g.C * g.P), THREADS, args)


def col2im(cols, dx, g):
    """dx (n, C, H, W) = the sum of cols (n, C*kH*kW, OH*OW) over overlapping windows: col2im_v1."""
    n = _check(dx, "dx", ndim=4).shape[0]
    _check(cols, "cols", shape=(n, g.C * g.kH * g.kW, g.P))
    _check(dx, "dx", shape=(n, g.C, g.H, g.W))
    args = (cols, dx, _i32(n, "n_images"), *_geom_v1(g))
    return _launch("conv2d.cu", "col2im_v1", _grid_1d(n * g.C * g.H * g.W), THREADS, args)


def _geom_v1(g):
    return tuple(_i32(v, "geometry") for v in (g.C, g.H, g.W, g.kH, g.kW, g.sH, g.sW, g.pH,
                                               g.pW, g.OH, g.OW))


# ---- local response normalisation -----------------------------------------------------------------
def _check_lrn(size, alpha, beta):
    if int(size) < 1:
        raise ValueError(f"LRN size must be >= 1, got {size}")
    return _i32(size, "size"), np.float32(alpha), np.float32(beta)


def lrn_forward(x, y, scale, size, alpha=1e-4, beta=0.75, k=1.0):
    """y = x * scale^-beta, scale = k + alpha/size * (window sum of x^2): lrn_forward_v1."""
    _check(x, "x", ndim=4)
    _check(y, "y", shape=x.shape)
    _check(scale, "scale", shape=x.shape)
    N, C, H, W = x.shape
    size, alpha, beta = _check_lrn(size, alpha, beta)
    args = (x, y, scale, _i32(N, "N"), _i32(C, "C"), _i32(H * W, "H*W"), size, alpha, beta,
            np.float32(k))
    return _launch("lrn.cu", "lrn_forward_v1", _grid_1d(N * H * W * (C > 0)), THREADS, args)


def lrn_backward(x, scale, gy, dx, size, alpha=1e-4, beta=0.75):
    """dx from x, the forward's scale and the output gradient gy: lrn_backward_v1."""
    _check(x, "x", ndim=4)
    for a, name in ((scale, "scale"), (gy, "gy"), (dx, "dx")):
        _check(a, name, shape=x.shape)
    N, C, H, W = x.shape
    size, alpha, beta = _check_lrn(size, alpha, beta)
    args = (x, scale, gy, dx, _i32(N, "N"), _i32(C, "C"), _i32(H * W, "H*W"), size, alpha, beta)
    return _launch("lrn.cu", "lrn_backward_v1", _grid_1d(N * H * W * (C > 0)), THREADS, args)


# ---- max-pooling ----------------------------------------------------------------------------------
def _pooled_size(n, k, s, p, ceil_mode):
    """shapes.pool_output_size after the checks the kernels rely on: padding <= kernel/2 (a window
    holds at least one input element) and a kernel no larger than the padded input."""
    if p > k // 2:
        raise ValueError(f"pooling needs 0 <= padding <= kernel/2; got kernel={k}, padding={p}")
    if n + 2 * p < k:
        raise ValueError(f"pooling kernel {k} larger than the padded input {n + 2 * p}")
    return pool_output_size(n, k, s, p, ceil_mode)


def max_pool2d_output_shape(x_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    N, C, H, W = x_shape
    (kH, kW) = pair(kernel_size, "kernel_size")
    (sH, sW) = pair(stride if stride is not None else kernel_size, "stride")
    (pH, pW) = pair(padding, "padding", minimum=0)
    return (N, C, _pooled_size(H, kH, sH, pH, ceil_mode), _pooled_size(W, kW, sW, pW, ceil_mode))


def _pool_args(x_shape, y_shape, kernel_size, stride, padding):
    N, C, H, W = x_shape
    OH, OW = y_shape[2], y_shape[3]
    (kH, kW) = pair(kernel_size, "kernel_size")
    (sH, sW) = pair(stride if stride is not None else kernel_size, "stride")
    (pH, pW) = pair(padding, "padding", minimum=0)
    ok = {max_pool2d_output_shape(x_shape, (kH, kW), (sH, sW), (pH, pW), c) for c in (False, True)}
    if tuple(y_shape) not in ok:
        raise ValueError(f"pooled shape {tuple(y_shape)} is neither floor nor ceil_mode output of "
                         f"{tuple(x_shape)} with kernel {kernel_size}, stride {stride}, padding {padding}")
    return tuple(_i32(v, "pool geometry") for v in (N * C, H, W, OH, OW, kH, kW, sH, sW, pH, pW))


def max_pool2d_forward(x, y, argmax, kernel_size, stride=None, padding=0):
    """y and argmax (int32 index h*W + w in the input plane): maxpool_forward_v1.

    y's shape (from :func:`max_pool2d_output_shape`) says whether ceil_mode is used.
    """
    _check(x, "x", ndim=4)
    _check(y, "y", ndim=4)
    _check(argmax, "argmax", dtype=np.int32, shape=y.shape)
    args = _pool_args(x.shape, y.shape, kernel_size, stride, padding)
    return _launch("maxpool.cu", "maxpool_forward_v1", _grid_1d(y.size), THREADS,
                   (x, y, argmax) + args)


def max_pool2d_backward(gy, argmax, gx, kernel_size, stride=None, padding=0):
    """gx from gy and the forward's argmax, gathered per input element: maxpool_backward_v1."""
    _check(gx, "gx", ndim=4)
    _check(gy, "gy", ndim=4)
    _check(argmax, "argmax", dtype=np.int32, shape=gy.shape)
    args = _pool_args(gx.shape, gy.shape, kernel_size, stride, padding)
    return _launch("maxpool.cu", "maxpool_backward_v1", _grid_1d(gx.size), THREADS,
                   (gy, argmax, gx) + args)


# ---- elementwise ----------------------------------------------------------------------------------
def _rows_cols(shape):
    """(rows, cols, C, bias_per_col) of an (N, C) or (N, C, *spatial) activation."""
    if len(shape) < 2:
        raise ValueError(f"activations must be (N, C) or (N, C, H, W), got shape {tuple(shape)}")
    N, C = int(shape[0]), int(shape[1])
    S = int(np.prod(shape[2:], dtype=np.int64))
    return (N, C, C, 1) if len(shape) == 2 else (N * C, S, C, 0)


def bias_act_forward(x, b, y, relu=True, max_blocks=DEFAULT_MAX_BLOCKS, max_grid_y=MAX_GRID_YZ):
    """y = act(x + b[channel]), b None for no bias, act ReLU or identity: bias_act_forward.

    x, y: (N, C) or (N, C, H, W); y may be x (in place).
    """
    _check(x, "x")
    _check(y, "y", shape=x.shape)
    rows, cols, C, per_col = _rows_cols(x.shape)
    if b is not None:
        _check(b, "b", shape=(C,))
    grid = (min(ceil_div(cols, THREADS), max_blocks), min(rows, max_grid_y), 1)
    args = (x, b if b is not None else x, y, _i32(rows, "rows"), _i32(cols, "cols"), _i32(C, "C"),
            np.int32(per_col), np.int32(b is not None), np.int32(bool(relu)))
    return _launch("elementwise.cu", "bias_act_forward", grid, THREADS, args)


def bias_grad_chunks(shape, target_blocks=TARGET_BLOCKS):
    """How many batch chunks the bias-gradient reduction uses for activations of ``shape``."""
    N, C = int(shape[0]), int(shape[1])
    blocks_per_chunk = C if len(shape) > 2 else ceil_div(C, THREADS)
    return max(1, min(N, ceil_div(target_blocks, max(blocks_per_chunk, 1))))


def bias_act_backward(gy, y, gx, partial, relu=True, chunks=1):
    """gx = gy * [y > 0] (relu; not written otherwise) and partial (chunks, C) bias-gradient sums.

    With chunks == 1, ``partial`` may be db itself (shape (C,)); else :func:`sum_partials` adds
    the chunks. ``y`` and ``gx`` are ignored (may be ``gy``) when relu is False.
    """
    _check(gy, "gy")
    _check(y, "y", shape=gy.shape)
    _check(gx, "gx", shape=gy.shape)
    N, C = int(gy.shape[0]), int(gy.shape[1])
    _check(partial, "partial")
    if partial.size != chunks * C:
        raise ValueError(f"partial must hold chunks * C = {chunks} * {C} floats, has {partial.size}")
    n_per_chunk = ceil_div(max(N, 1), chunks)
    if len(gy.shape) == 2:
        grid = (ceil_div(C, THREADS), chunks, 1)
        args = (gy, y, gx, partial, _i32(N, "N"), _i32(C, "C"), _i32(n_per_chunk, "n_per_chunk"),
                np.int32(bool(relu)))
        return _launch("elementwise.cu", "bias_act_backward_nc", grid, THREADS, args)
    S = int(np.prod(gy.shape[2:], dtype=np.int64))
    if S == 0:
        return None  # no pixels: the caller zero-fills db
    args = (gy, y, gx, partial, _i32(N, "N"), _i32(C, "C"), _i32(S, "S"),
            _i32(n_per_chunk, "n_per_chunk"), np.int32(bool(relu)))
    return _launch("elementwise.cu", "bias_act_backward_nchw", (C, chunks, 1), THREADS, args)


def sum_partials(partial, out, chunks):
    """out[c] = sum over k of partial[k, c], k in order (bias and split-K weight gradients)."""
    _check(partial, "partial")
    _check(out, "out")
    if partial.size != chunks * out.size:
        raise ValueError(f"partial has {partial.size} floats, expected {chunks} x {out.size}")
    return _launch("elementwise.cu", "sum_partials", _grid_1d(out.size), THREADS,
                   (partial, out, _i32(chunks, "chunks"), _i32(out.size, "C")))


def dropout_apply(x, mask, y, p, max_blocks=DEFAULT_MAX_BLOCKS):
    """y = x * mask / (1 - p) (inverted dropout; mask bool or uint8, 1 = keep): dropout_apply."""
    _check(x, "x")
    _check(mask, "mask", dtype=(np.bool_, np.uint8), shape=x.shape)
    _check(y, "y", shape=x.shape)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return _launch("elementwise.cu", "dropout_apply", _grid_1d(x.size, max_blocks), THREADS,
                   (x, mask, y, np.float32(1.0 / (1.0 - p)), np.int64(x.size)))


def softmax_xent_forward(logits, labels, probs, loss):
    """probs = softmax(logits), loss[n] = -log probs[n, labels[n]]: a block per row."""
    _check(logits, "logits", ndim=2)
    N, K = logits.shape
    _check(labels, "labels", dtype=np.int64, shape=(N,))
    _check(probs, "probs", shape=(N, K))
    _check(loss, "loss", shape=(N,))
    return _launch("elementwise.cu", "softmax_xent_forward", (N * (K > 0), 1, 1), THREADS,
                   (logits, labels, probs, loss, _i32(N, "N"), _i32(K, "K")))


def softmax_xent_backward(probs, labels, grad_loss, gz, max_blocks=DEFAULT_MAX_BLOCKS,
                          max_grid_y=MAX_GRID_YZ):
    """gz = (probs - onehot(labels)) * grad_loss[:, None]."""
    _check(probs, "probs", ndim=2)
    N, K = probs.shape
    _check(labels, "labels", dtype=np.int64, shape=(N,))
    _check(grad_loss, "grad_loss", shape=(N,))
    _check(gz, "gz", shape=(N, K))
    grid = (min(ceil_div(K, THREADS), max_blocks), min(N, max_grid_y), 1)
    return _launch("elementwise.cu", "softmax_xent_backward", grid, THREADS,
                   (probs, labels, grad_loss, gz, _i32(N, "N"), _i32(K, "K")))


def sgd_momentum(w, g, v, lr, momentum=0.9, weight_decay=0.0005, max_blocks=DEFAULT_MAX_BLOCKS):
    """In place: v = momentum*v - weight_decay*lr*w - lr*g; w = w + v (the paper's rule)."""
    _check(w, "w")
    _check(g, "g", shape=w.shape)
    _check(v, "v", shape=w.shape)
    return _launch("elementwise.cu", "sgd_momentum", _grid_1d(w.size, max_blocks), THREADS,
                   (w, g, v, np.float32(lr), np.float32(momentum), np.float32(weight_decay),
                    np.int64(w.size)))
