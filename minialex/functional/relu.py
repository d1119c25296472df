"""Rectified linear unit, the paper's non-linearity (Krizhevsky et al. 2012, Sec. 3.1).

    y = max(x, 0)        dL/dx = g * [x > 0]

At x = 0 exactly the derivative is taken as 0 (as PyTorch does).
"""
from ..tensor import Tensor
from ._checks import check_tensor


def relu(x):
    check_tensor(x, "input", "relu")
    out = x.xp.maximum(x.data, 0)

    def backward(g):
        return (g * (x.data > 0),)
    return Tensor.from_op(out, (x,), backward, "relu")
