"""Fully connected layer, as ``torch.nn.functional.linear``.

    y = x W^T + b        x (*, in), W (out, in), b (out,)  ->  y (*, out)

Backward: dx = g W,  dW = g^T x (summed over all leading dims),  db = sum of g.
AlexNet's fc6, fc7 and fc8 are this op (Krizhevsky et al. 2012, Sec. 3.5).

With one BLAS thread (as ``minialex train`` runs on the CPU) a large layer's three products run in
pieces of the output features, one per thread (``_forward_in_pieces``, ``_backward_in_pieces``): rows [o0, o1) of W give columns
[o0, o1) of y, rows [o0, o1) of dW and one part of dx, and the parts of dx are summed in order. The
paper net's fc6 at batch 16, 2 cores: forward 53 -> 27 ms, backward 85 -> 43 ms (the products stream
W, 151 MB, from memory: one core cannot read it as fast as two).
"""
from .. import backend
from ..parallel import for_slices, product_threads
from ..shapes import ceil_div
from ..tensor import Tensor
from ._checks import check_same_device, check_tensor

MIN_WEIGHTS_IN_PIECES = 1 << 20   # smaller layers (the mini net's fc: 65,536 weights) run as one piece


def linear(x, weight, bias=None):
    check_tensor(x, "input", "linear")
    check_tensor(weight, "weight", "linear", ndim=2)
    if x.ndim < 1:
        raise ValueError("linear: input must have at least 1 dimension")
    out_features, in_features = weight.shape
    if x.shape[-1] != in_features:
        raise ValueError(f"linear: input has {x.shape[-1]} features in its last dimension (shape {x.shape}), "
                         f"weight expects {in_features} (weight shape {weight.shape})")
    if bias is not None:
        check_tensor(bias, "bias", "linear", ndim=1)
        if bias.shape[0] != out_features:
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({out_features},)")
    check_same_device("linear", x, weight, bias)
    if x.dtype != weight.dtype:
        raise TypeError(f"linear: input is {x.dtype} but weight is {weight.dtype}; convert one with .to()")

    X = x.data.reshape(-1, in_features)                 # (M, in), M = product of leading dims
    W = weight.data                                     # (out, in)
    pieces = product_threads(W) if W.size >= MIN_WEIGHTS_IN_PIECES else 1
    if pieces == 1:
        Y = X @ W.T                                     # (M, out)
    else:
        Y = _forward_in_pieces(X, W, pieces)
    if bias is not None:
        Y += bias.data
    out = Y.reshape(x.shape[:-1] + (out_features,))     # (*, out)

    def backward(g):
        G = g.reshape(-1, out_features)                 # (M, out)
        dx = dw = db = None
        if pieces == 1:
            dx = G @ W if x.requires_grad else None                        # (M, in)
            dw = G.T @ X if weight.requires_grad else None                 # (out, in)
        else:
            dx, dw = _backward_in_pieces(G, X, W, pieces, x.requires_grad, weight.requires_grad)
        if dx is not None:
            dx = dx.reshape(x.shape)
        if bias is not None and bias.requires_grad:
            db = G.sum(axis=0)                                             # (out,)
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "linear")


def _forward_in_pieces(X, W, pieces):
    """Y = X W^T (M, out), its columns in ``pieces`` slices s, side by side: Y[:, s] = X W[s]^T."""
    Y = backend.xp_of(X).empty((X.shape[0], W.shape[0]), dtype=X.dtype)

    def piece(s):                                       # s: a slice of the output features
        Y[:, s] = X @ W[s].T
    for_slices(W.shape[0], piece, chunk=ceil_div(W.shape[0], pieces))
    return Y


def _backward_in_pieces(G, X, W, pieces, need_dx, need_dw):
    """dx = G W (M, in) as the sum of the pieces' G[:, s] W[s], in order; dW = G^T X (out, in) by rows,
    dW[s] = G[:, s]^T X. None where not needed."""
    xp = backend.xp_of(G)
    dW = xp.empty(W.shape, dtype=G.dtype) if need_dw else None

    def piece(s):                                       # s: a slice of the output features
        if need_dw:
            xp.matmul(G[:, s].T, X, out=dW[s])
        return G[:, s] @ W[s] if need_dx else None
    parts = for_slices(W.shape[0], piece, chunk=ceil_div(W.shape[0], pieces))
    dx = None
    if need_dx:
        dx = parts[0]
        for part in parts[1:]:
            dx += part
    return dx, dW
