"""Dropout (Krizhevsky et al. 2012, Sec. 4.2; Hinton et al. 2012), "inverted" form.

Training: each element is kept with probability 1 - p and scaled by 1 / (1 - p):
    y = x * m / (1 - p),   m ~ Bernoulli(1 - p)      dL/dx = g * m / (1 - p)
Evaluation (training=False): y = x.
The paper instead multiplies by (1 - p) = 0.5 at test time; both give the same
expected activation, and inverted dropout leaves the test-time net untouched.
The mask comes from minialex's generator, so ``minialex.manual_seed`` makes it reproducible.
"""
import numbers

from .. import backend
from ..tensor import Tensor
from ._checks import check_tensor


def dropout(x, p=0.5, training=True):
    check_tensor(x, "input", "dropout")
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = x.xp.zeros(x.shape, dtype=x.dtype)
    else:
        keep = backend.rng(x.device).random(x.shape, dtype=x.xp.float32) >= p   # (same shape as x)
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    out = x.data * mask
    return Tensor.from_op(out, (x,), lambda g: (g * mask,), "dropout")
