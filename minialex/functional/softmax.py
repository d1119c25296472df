"""Softmax and log-softmax along one dimension (the paper's output layer, Sec. 3.5).

    softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m),      m = max_j x_j
    log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m)
Subtracting the maximum changes nothing mathematically and keeps exp() from
overflowing, so logits of magnitude 1e4 are fine.

Backward (y = softmax(x)):      dx = y * (g - sum_j g_j y_j)
Backward (y = log_softmax(x)):  dx = g - softmax(x) * sum_j g_j
"""
from ..tensor import Tensor
from ._checks import check_tensor, normalize_dim


def softmax(x, dim):
    check_tensor(x, "input", "softmax")
    d = normalize_dim(dim, x.ndim, "softmax")
    xp = x.xp
    e = xp.exp(x.data - x.data.max(axis=d, keepdims=True))
    y = e / e.sum(axis=d, keepdims=True)

    def backward(g):
        return (y * (g - (g * y).sum(axis=d, keepdims=True)),)
    return Tensor.from_op(y, (x,), backward, "softmax")


def log_softmax(x, dim):
    check_tensor(x, "input", "log_softmax")
    d = normalize_dim(dim, x.ndim, "log_softmax")
    xp = x.xp
    z = x.data - x.data.max(axis=d, keepdims=True)
    y = z - xp.log(xp.exp(z).sum(axis=d, keepdims=True))

    def backward(g):
        return (g - xp.exp(y) * g.sum(axis=d, keepdims=True),)
    return Tensor.from_op(y, (x,), backward, "log_softmax")
