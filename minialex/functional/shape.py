"""Shape ops: reshape, flatten, transpose/permute, indexing. They move no arithmetic,
so their backward only puts the gradient back into the input's shape."""
import numpy as np

from .. import backend
from ..tensor import Tensor
from ._checks import normalize_dim


def reshape(x, *shape):
    """View ``x`` with a new shape (one entry may be -1). Gradient: g reshaped back."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        out = x.data.reshape(shape)
    except (ValueError, TypeError):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.numel()} elements) into {tuple(shape)}") from None
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(x, start_dim=1, end_dim=-1):
    """Merge dims start_dim..end_dim into one, like ``torch.flatten``: (N, C, H, W) -> (N, C*H*W)."""
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dim(start_dim, x.ndim, "flatten")
    e = normalize_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def permute(x, dims):
    """Reorder dimensions. Gradient: g permuted by the inverse order."""
    dims = tuple(normalize_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions")
    inverse = tuple(np.argsort(dims))
    return Tensor.from_op(x.data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute")


def transpose(x, dim0, dim1):
    """Swap two dimensions."""
    dims = list(range(x.ndim))
    a, b = normalize_dim(dim0, x.ndim, "transpose"), normalize_dim(dim1, x.ndim, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims)


def getitem(x, index):
    """``x[index]`` with NumPy indexing. Gradient: zeros with g added at the indexed places
    (``np.add.at``, so an index repeated in an integer array receives every gradient)."""
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    out = x.data[index]

    def backward(g):
        xp = backend.xp_of(g)
        dx = xp.zeros_like(x.data)
        if xp is np:
            np.add.at(dx, index, g)
        else:
            xp.add.at(dx, index, g)
        return (dx,)
    return Tensor.from_op(out, (x,), backward, "getitem")
