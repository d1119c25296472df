"""Dropout (Krizhevsky et al. 2012, Sec. 4.2; Hinton et al. 2012), "inverted" form.

Training: each element is kept with probability 1 - p and scaled by 1 / (1 - p):
    y = x * m / (1 - p),   m ~ Bernoulli(1 - p)      dL/dx = g * m / (1 - p)
Evaluation (training=False): y = x.
The paper instead multiplies by (1 - p) = 0.5 at test time; both give the same
expected activation, and inverted dropout leaves the test-time net untouched.
The mask is drawn from minialex's generator on the host (``minialex.manual_seed`` makes it
reproducible) for every device, so a seed gives the same masks on the CPU and the GPU; on the GPU
the mask is copied over as bytes and applied by the dropout_apply kernel (kernels/elementwise.cu).
Inside a ``minialex.keyed_random.samples`` block (the trainer's) row i's mask comes from numbers keyed by
sample i instead, so it is the same whichever process, and whichever shard of the batch, the sample is in.
"""
import numbers

import numpy as np

from .. import backend, keyed_random
from ..cuda import use_cuda_kernels
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
        return Tensor.from_op(x.data * mask, (x,), lambda g: (g * mask,), "dropout")
    keys = keyed_random.active()                                       # numbers keyed per row, or minialex's
    uniform = keys.uniform(x.shape) if keys is not None else backend.rng().random(x.shape, dtype=np.float32)
    keep = uniform >= p                                                # m, bool (same shape as x), host
    if use_cuda_kernels(x):
        return _dropout_cuda(x, backend.to_device(keep.view(np.uint8), "cuda"), p)
    mask = backend.to_device(keep, x.device).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))  # m / (1-p)
    out = x.data * mask
    return Tensor.from_op(out, (x,), lambda g: (g * mask,), "dropout")


def _dropout_cuda(x, keep, p):
    """The same on float32 CuPy data: y = x * m / (1-p) and dL/dx = g * m / (1-p), one kernel each."""
    from ..cuda import kernels as cuda_kernels
    out = cuda_kernels.dropout(x.data, keep, p)
    return Tensor.from_op(out, (x,), lambda g: (cuda_kernels.dropout(g, keep, p),), "dropout")
