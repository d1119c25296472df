"""minialex's CUDA kernels on CuPy arrays: compile kernels/*.cu with cupy.RawModule and launch them.

Every public function takes and returns CuPy arrays (float32, any strides: inputs are made
contiguous; outputs are new contiguous arrays, except :func:`sgd_momentum_`, which updates in
place). CuPy is imported only when one of them is called.

Each public function is a thin wrapper that binds CuPy and :func:`run` to an implementation
``_name(xp, run, ...)`` written against an array module ``xp``. The CPU emulation tests call the
same implementations with ``xp = numpy`` and ``run`` = the emulated launcher, so the code that
chains kernels (im2col + matmul, split-K + reduction, bias gradients) is tested without a GPU.

Grids, blocks and argument tuples come from :mod:`minialex.cuda.launch`.
"""
import functools

import numpy as np

from . import launch
from .sources import read_source

NVRTC_OPTIONS = ("-std=c++17",)
V1_CHUNK_FLOATS = 1 << 26  # im2col columns per chunk of images in version 1 (256 MiB)


# ---- compiling and launching ----------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _module(source):
    import cupy
    return cupy.RawModule(code=read_source(source), options=NVRTC_OPTIONS)


@functools.lru_cache(maxsize=None)
def _function(source, kernel):
    return _module(source).get_function(kernel)


def run(config):
    """Launch a :class:`minialex.cuda.launch.Launch` on the current stream (nothing for None)."""
    if config is None:
        return
    _function(config.source, config.kernel)(config.grid, config.block, config.args,
                                            shared_mem=config.shared_mem)


def _gpu(impl):
    """The public CuPy version of an implementation ``impl(xp, run, *args)``."""
    def on_gpu(*args, **kwargs):
        import cupy
        return impl(cupy, run, *args, **kwargs)
    on_gpu.__name__ = impl.__name__.lstrip("_")
    on_gpu.__qualname__ = on_gpu.__name__
    on_gpu.__doc__ = impl.__doc__
    return on_gpu


def _f32(xp, a, name):
    a = xp.ascontiguousarray(a)
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype}")
    return a


# ---- convolution ----------------------------------------------------------------------------------
def _image_chunks(g, chunk_floats):
    """[n0, n1) ranges of images whose im2col columns hold at most chunk_floats floats."""
    per_image = max(1, g.C * g.kH * g.kW * g.P)
    step = max(1, chunk_floats // per_image)
    return [(n0, min(g.N, n0 + step)) for n0 in range(0, g.N, step)]


def _conv2d_forward(xp, run, x, w, b=None, stride=1, padding=0, groups=1, version=None,
                    chunk_floats=V1_CHUNK_FLOATS):
    """y (N, O, OH, OW) = conv2d(x (N, C, H, W), w (O, C/groups, kH, kW)) + b (O,) or no bias.

    version 1: im2col_v1 + cuBLAS (xp.matmul) per chunk of images, bias by bias_act_forward;
    2, 3: implicit GEMM (conv2d_fwd_v2 / _v3, bias fused); None: launch.default_conv_version.
    """
    x, w = _f32(xp, x, "x"), _f32(xp, w, "w")
    b = None if b is None else _f32(xp, b, "b")
    g = launch.conv_geometry(x.shape, w.shape, stride, padding, groups)
    version = launch.default_conv_version(g) if version is None else version
    y = xp.empty((g.N, g.O, g.OH, g.OW), dtype=np.float32)
    if version != 1:
        run(launch.conv2d_forward(x, w, b, y, g, version))
        return y
    wg = w.reshape(g.groups, g.Og, g.K)                                   # (G, Og, Kg)
    for n0, n1 in _image_chunks(g, chunk_floats):
        cols = xp.empty((n1 - n0, g.C * g.kH * g.kW, g.P), dtype=np.float32)  # (n, G*Kg, P)
        run(launch.im2col(x[n0:n1], cols, g))
        yc = xp.matmul(wg, cols.reshape(n1 - n0, g.groups, g.K, g.P))      # (n, G, Og, P)
        y[n0:n1] = yc.reshape(n1 - n0, g.O, g.OH, g.OW)
    if b is not None:
        run(launch.bias_act_forward(y, b, y, relu=False))
    return y


def _conv2d_backward_data(xp, run, dy, w, x_shape, stride=1, padding=0, groups=1, version=None,
                          chunk_floats=V1_CHUNK_FLOATS):
    """dx (N, C, H, W) from dy (N, O, OH, OW) and w.

    version 1: cols = W_g^T @ dY_g (xp.matmul) then col2im_v1 (a gather, no atomics);
    2, 3: implicit GEMM conv2d_bwd_data_v2 / _v3.
    """
    dy, w = _f32(xp, dy, "dy"), _f32(xp, w, "w")
    g = launch.conv_geometry(x_shape, w.shape, stride, padding, groups)
    if tuple(dy.shape) != (g.N, g.O, g.OH, g.OW):
        raise ValueError(f"dy must have shape {(g.N, g.O, g.OH, g.OW)}, got {tuple(dy.shape)}")
    version = launch.default_conv_version(g) if version is None else version
    dx = xp.empty((g.N, g.C, g.H, g.W), dtype=np.float32)
    if version != 1:
        run(launch.conv2d_backward_data(dy, w, dx, g, version))
        return dx
    wt = w.reshape(g.groups, g.Og, g.K).transpose(0, 2, 1)               # (G, Kg, Og)
    for n0, n1 in _image_chunks(g, chunk_floats):
        cols = xp.matmul(wt, dy[n0:n1].reshape(n1 - n0, g.groups, g.Og, g.P))  # (n, G, Kg, P)
        cols = xp.ascontiguousarray(cols.reshape(n1 - n0, g.groups * g.K, g.P))
        run(launch.col2im(cols, dx[n0:n1], g))
    return dx


def _conv2d_backward_weight(xp, run, x, dy, w_shape, stride=1, padding=0, groups=1, version=None,
                            bias=True, chunk_floats=V1_CHUNK_FLOATS):
    """(dw (O, C/groups, kH, kW), db (O,) or None) from x and dy.

    version 1: im2col_v1 + xp.matmul per chunk, summed over images;
    2, 3: implicit GEMM conv2d_bwd_weight_v2 / _v3, split-K over N*OH*OW when there are few
    tiles, the splits added by sum_partials in a fixed order. db: bias_act_backward (no ReLU).
    """
    x, dy = _f32(xp, x, "x"), _f32(xp, dy, "dy")
    g = launch.conv_geometry(x.shape, w_shape, stride, padding, groups)
    if tuple(dy.shape) != (g.N, g.O, g.OH, g.OW):
        raise ValueError(f"dy must have shape {(g.N, g.O, g.OH, g.OW)}, got {tuple(dy.shape)}")
    version = launch.default_conv_version(g) if version is None else version
    if version == 1:
        dw = xp.zeros((g.groups, g.Og, g.K), dtype=np.float32)
        for n0, n1 in _image_chunks(g, chunk_floats):
            cols = xp.empty((n1 - n0, g.C * g.kH * g.kW, g.P), dtype=np.float32)
            run(launch.im2col(x[n0:n1], cols, g))
            cols = cols.reshape(n1 - n0, g.groups, g.K, g.P)              # (n, G, Kg, P)
            dyc = dy[n0:n1].reshape(n1 - n0, g.groups, g.Og, g.P)         # (n, G, Og, P)
            dw += xp.matmul(dyc, cols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, Og, Kg)
        dw = dw.reshape(tuple(w_shape))
    else:
        dw = xp.empty(tuple(w_shape), dtype=np.float32)
        splits, r_per_split = launch.conv2d_weight_splits(g, version)
        if splits == 1:
            run(launch.conv2d_backward_weight(x, dy, dw, g, version, 1, r_per_split))
        else:
            work = xp.empty((splits, g.O, g.K), dtype=np.float32)         # one dW per split
            run(launch.conv2d_backward_weight(x, dy, work, g, version, splits, r_per_split))
            run(launch.sum_partials(work, dw, splits))
    db = _bias_act_backward(xp, run, dy, None, relu=False)[1] if bias else None
    return dw, db


# ---- local response normalisation -----------------------------------------------------------------
def _lrn_forward(xp, run, x, size, alpha=1e-4, beta=0.75, k=1.0):
    """(y, scale), both (N, C, H, W): scale = k + alpha/size * window sum of x^2 (PyTorch's
    convention), y = x * scale^-beta. One fused pass: lrn_forward_v1."""
    x = _f32(xp, x, "x")
    y = xp.empty(x.shape, dtype=np.float32)
    scale = xp.empty(x.shape, dtype=np.float32)
    run(launch.lrn_forward(x, y, scale, size, alpha, beta, k))
    return y, scale


def _lrn_backward(xp, run, x, scale, gy, size, alpha=1e-4, beta=0.75):
    """dx (N, C, H, W) from x, the forward's scale and gy: lrn_backward_v1."""
    x, scale, gy = _f32(xp, x, "x"), _f32(xp, scale, "scale"), _f32(xp, gy, "gy")
    dx = xp.empty(x.shape, dtype=np.float32)
    run(launch.lrn_backward(x, scale, gy, dx, size, alpha, beta))
    return dx


# ---- max-pooling ----------------------------------------------------------------------------------
def _max_pool2d_forward(xp, run, x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """(y (N, C, OH, OW), argmax int32 (N, C, OH, OW), index h*W + w): first maximum wins."""
    x = _f32(xp, x, "x")
    shape = launch.max_pool2d_output_shape(x.shape, kernel_size, stride, padding, ceil_mode)
    y = xp.empty(shape, dtype=np.float32)
    argmax = xp.empty(shape, dtype=np.int32)
    run(launch.max_pool2d_forward(x, y, argmax, kernel_size, stride, padding))
    return y, argmax


def _max_pool2d_backward(xp, run, gy, argmax, x_shape, kernel_size, stride=None, padding=0):
    """gx (x_shape): gy gathered from the windows whose argmax is each input element."""
    gy = _f32(xp, gy, "gy")
    argmax = xp.ascontiguousarray(argmax)
    gx = xp.empty(tuple(x_shape), dtype=np.float32)
    run(launch.max_pool2d_backward(gy, argmax, gx, kernel_size, stride, padding))
    return gx


# ---- elementwise ----------------------------------------------------------------------------------
def _bias_act(xp, run, x, b=None, relu=True):
    """y = relu(x + b) (or x + b): x (N, C) or (N, C, H, W), b (C,) or None."""
    x = _f32(xp, x, "x")
    b = None if b is None else _f32(xp, b, "b")
    y = xp.empty(x.shape, dtype=np.float32)
    run(launch.bias_act_forward(x, b, y, relu))
    return y


def _bias_act_backward(xp, run, gy, y=None, relu=True):
    """(gx, db): gx = gy * [y > 0] (None without relu), db = gy summed over all axes but 1."""
    gy = _f32(xp, gy, "gy")
    y = _f32(xp, y, "y") if relu else gy
    gx = xp.empty(gy.shape, dtype=np.float32) if relu else gy
    C = gy.shape[1]
    chunks = launch.bias_grad_chunks(gy.shape)
    db = xp.empty((C,), dtype=np.float32)
    partial = db if chunks == 1 else xp.empty((chunks, C), dtype=np.float32)
    config = launch.bias_act_backward(gy, y, gx, partial, relu, chunks)
    if config is None:  # no pixels
        db[...] = 0
    else:
        run(config)
        if chunks > 1:
            run(launch.sum_partials(partial, db, chunks))
    return (gx if relu else None), db


def _dropout(xp, run, x, mask, p):
    """y = x * mask / (1 - p): inverted dropout with a given bool/uint8 mask (also the backward)."""
    x = _f32(xp, x, "x")
    mask = xp.ascontiguousarray(mask)
    y = xp.empty(x.shape, dtype=np.float32)
    run(launch.dropout_apply(x, mask, y, p))
    return y


def _softmax_cross_entropy(xp, run, logits, labels):
    """(loss (N,), probs (N, K)): loss_n = -log softmax(logits_n)[labels_n] (NaN for a bad label)."""
    logits = _f32(xp, logits, "logits")
    labels = xp.ascontiguousarray(labels, dtype=np.int64)
    N, K = logits.shape
    probs = xp.empty((N, K), dtype=np.float32)
    loss = xp.empty((N,), dtype=np.float32)
    run(launch.softmax_xent_forward(logits, labels, probs, loss))
    return loss, probs


def _softmax_cross_entropy_backward(xp, run, probs, labels, grad_loss):
    """gz = (probs - onehot(labels)) * grad_loss[:, None]; grad_loss a scalar or (N,)."""
    probs = _f32(xp, probs, "probs")
    labels = xp.ascontiguousarray(labels, dtype=np.int64)
    N = probs.shape[0]
    grad_loss = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(grad_loss, dtype=np.float32), (N,)))
    gz = xp.empty(probs.shape, dtype=np.float32)
    run(launch.softmax_xent_backward(probs, labels, grad_loss, gz))
    return gz


def _sgd_momentum_(xp, run, w, g, v, lr, momentum=0.9, weight_decay=0.0005):
    """In place: v = momentum*v - weight_decay*lr*w - lr*g; w = w + v. w, v contiguous float32."""
    g = _f32(xp, g, "g")
    run(launch.sgd_momentum(w, g, v, lr, momentum, weight_decay))
    return w, v


conv2d_forward = _gpu(_conv2d_forward)
conv2d_backward_data = _gpu(_conv2d_backward_data)
conv2d_backward_weight = _gpu(_conv2d_backward_weight)
lrn_forward = _gpu(_lrn_forward)
lrn_backward = _gpu(_lrn_backward)
max_pool2d_forward = _gpu(_max_pool2d_forward)
max_pool2d_backward = _gpu(_max_pool2d_backward)
bias_act = _gpu(_bias_act)
bias_act_backward = _gpu(_bias_act_backward)
dropout = _gpu(_dropout)
softmax_cross_entropy = _gpu(_softmax_cross_entropy)
softmax_cross_entropy_backward = _gpu(_softmax_cross_entropy_backward)
sgd_momentum_ = _gpu(_sgd_momentum_)
