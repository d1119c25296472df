"""Launches of kernels/maxpool.cu: max-pooling forward (with the argmax) and backward."""
import numpy as np

from ...shapes import pair, pool_output_size
from .common import THREADS, _check, _grid_1d, _i32, _launch


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
