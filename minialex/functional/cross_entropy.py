"""Cross-entropy of softmax outputs with integer class targets (the paper's objective:
maximise the multinomial log-probability of the correct label, Sec. 3.5).

    loss_n = -log softmax(z_n)[t_n] = -(z_n[t_n] - m_n - log sum_j exp(z_n[j] - m_n))
    loss   = mean_n loss_n   (reduction="mean", PyTorch's default), or the sum, or per sample

Shapes: logits (N, C), target (N,) integers in [0, C) -> scalar (or (N,) for "none").
Backward, fused (never forms d log / d softmax separately):
    dz_n = (softmax(z_n) - onehot(t_n)) * g_n   (divided by N for the mean)
"""
import numpy as np

from .. import backend
from ..tensor import Tensor
from ._checks import check_tensor

REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(logits, target, reduction="mean"):
    op = "cross_entropy"
    check_tensor(logits, "logits", op, ndim=2)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    N, C = logits.shape
    t = target.data if isinstance(target, Tensor) else target
    t = backend.to_device(t if hasattr(t, "dtype") else np.asarray(t), logits.device)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if tuple(t.shape) != (N,):
        raise ValueError(f"{op}: target must have shape ({N},) to match logits {logits.shape}, got {tuple(t.shape)}")
    if N and (int(t.min()) < 0 or int(t.max()) >= C):
        raise ValueError(f"{op}: target values must be class indices in [0, {C - 1}], "
                         f"got values from {int(t.min())} to {int(t.max())}")
    xp = logits.xp
    rows = xp.arange(N)
    z = logits.data - logits.data.max(axis=1, keepdims=True)          # (N, C)
    logsum = xp.log(xp.exp(z).sum(axis=1))                             # (N,)
    losses = logsum - z[rows, t]                                       # (N,)
    if reduction == "mean":
        out = losses.mean()
    elif reduction == "sum":
        out = losses.sum()
    else:
        out = losses

    def backward(g):
        p = xp.exp(z - logsum[:, None])                                # softmax (N, C)
        p[rows, t] -= 1
        if reduction == "none":
            return (p * g[:, None],)
        scale = g / N if reduction == "mean" else g
        return (p * scale,)
    return Tensor.from_op(out, (logits,), backward, "cross_entropy")
