"""Fully connected layer, as ``torch.nn.functional.linear``.

    y = x W^T + b        x (*, in), W (out, in), b (out,)  ->  y (*, out)

Backward: dx = g W,  dW = g^T x (summed over all leading dims),  db = sum of g.
AlexNet's fc6, fc7 and fc8 are this op (Krizhevsky et al. 2012, Sec. 3.5).
"""
from ..tensor import Tensor
from ._checks import check_same_device, check_tensor


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
    Y = X @ weight.data.T                               # (M, out)
    if bias is not None:
        Y += bias.data
    out = Y.reshape(x.shape[:-1] + (out_features,))     # (*, out)

    def backward(g):
        G = g.reshape(-1, out_features)                 # (M, out)
        dx = (G @ weight.data).reshape(x.shape) if x.requires_grad else None
        dw = G.T @ X if weight.requires_grad else None  # (out, in)
        db = G.sum(axis=0) if bias is not None and bias.requires_grad else None
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, "linear")
