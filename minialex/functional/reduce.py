"""Reductions: sum and mean over all or some dimensions.

Gradient: every element that was summed receives the output gradient (for the mean,
divided by the number of elements averaged), i.e. g broadcast back to the input shape.
"""
from .. import backend
from ..tensor import Tensor
from ._checks import normalize_dim


def _axes(dim, ndim, op):
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(sorted(normalize_dim(d, ndim, op) for d in dims))


def _expand(g, shape, axes, keepdim):
    """Broadcast g (the reduced shape) back to ``shape`` (a read-only view)."""
    if not keepdim:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))  # reduced axes as size 1
    return backend.xp_of(g).broadcast_to(g, shape)


def sum(x, dim=None, keepdim=False):
    """Sum over ``dim`` (None: all). Shape: x.shape without ``dim`` (kept as 1 with keepdim)."""
    axes = _axes(dim, x.ndim, "sum")
    out = x.data.sum(axis=axes, keepdims=keepdim)

    def backward(g):
        return (_expand(g, x.shape, axes, keepdim),)
    return Tensor.from_op(out, (x,), backward, "sum")


def mean(x, dim=None, keepdim=False):
    """Mean over ``dim`` (None: all)."""
    axes = _axes(dim, x.ndim, "mean")
    count = 1
    for a in axes:
        count *= x.shape[a]
    out = x.data.mean(axis=axes, keepdims=keepdim)

    def backward(g):
        return (_expand(g / count, x.shape, axes, keepdim),)
    return Tensor.from_op(out, (x,), backward, "mean")
