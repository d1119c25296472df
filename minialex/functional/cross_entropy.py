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
from ..cuda import use_cuda_kernels
from ..tensor import Tensor
from ._checks import check_tensor

REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(logits, target, reduction="mean"):
    op = "cross_entropy"
    check_tensor(logits, "logits", op, ndim=2)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    N, C = logits.shape
    t = _checked_target(target, N, C, op)
    t = backend.to_device(t, logits.device)
    if use_cuda_kernels(logits):
        return _cross_entropy_cuda(logits, t, reduction)
    xp = logits.xp
    rows = xp.arange(N)
    z = logits.data - logits.data.max(axis=1, keepdims=True)          # (N, C)
    logsum = xp.log(xp.exp(z).sum(axis=1))                             # (N,)
    losses = logsum - z[rows, t]                                       # (N,)
    out = _reduce(losses, reduction)

    def backward(g):
        p = xp.exp(z - logsum[:, None])                                # softmax (N, C)
        p[rows, t] -= 1
        if reduction == "none":
            return (p * g[:, None],)
        scale = g / N if reduction == "mean" else g
        return (p * scale,)
    return Tensor.from_op(out, (logits,), backward, "cross_entropy")


def _cross_entropy_cuda(logits, t, reduction):
    """The same on float32 CuPy data: softmax_xent_forward gives the losses (N,) and the
    softmax (N, C) in one pass; softmax_xent_backward forms (p - onehot(t)) * g_n."""
    from ..cuda import kernels as cuda_kernels
    N = logits.shape[0]
    losses, probs = cuda_kernels.softmax_cross_entropy(logits.data, t)  # (N,), (N, C)
    out = _reduce(losses, reduction)

    def backward(g):
        g_n = g if reduction == "none" else (g / N if reduction == "mean" else g)   # scalar or (N,)
        return (cuda_kernels.softmax_cross_entropy_backward(probs, t, g_n),)
    return Tensor.from_op(out, (logits,), backward, "cross_entropy")


def _reduce(losses, reduction):
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _checked_target(target, N, C, op):
    """The target as an integer array of shape (N,) with values in [0, C), or an error.

    A target on the host (a NumPy array or a list, as the trainer passes it) is checked on the host;
    one already on the GPU costs a single device-to-host sync for the range check."""
    t = target.data if isinstance(target, Tensor) else target
    t = t if hasattr(t, "dtype") else np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if tuple(t.shape) != (N,):
        raise ValueError(f"{op}: target must have shape ({N},) to match logits ({N}, {C}), got {tuple(t.shape)}")
    if N and bool(((t < 0) | (t >= C)).any()):
        lo, hi = int(t.min()), int(t.max())
        raise ValueError(f"{op}: target values must be class indices in [0, {C - 1}], "
                         f"got values from {lo} to {hi}")
    return t
