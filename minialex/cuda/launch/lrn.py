"""Launches of kernels/lrn.cu: local response normalisation, forward and backward."""
import numpy as np

from .common import THREADS, _check, _grid_1d, _i32, _launch


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
