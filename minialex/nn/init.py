"""Weight initialisation, in place, with minialex's seeded generator (like ``torch.nn.init``).

* ``normal_(p, std)``: N(0, std^2), the paper's choice (std 0.01, Sec. 5).
* ``kaiming_normal_(p)``: N(0, 2 / fan_in), He et al. 2015, what trains deep ReLU nets from scratch.
* ``uniform_(p, a, b)``, ``constant_(p, v)``, ``zeros_(p)``.
* ``default_uniform_(w, b)``: PyTorch's default for Conv2d/Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fan_in of a weight (out, in, kH, kW) is in*kH*kW.
"""
import math

import numpy as np

from .. import backend


def fan_in(p):
    return int(np.prod(p.shape[1:])) if len(p.shape) > 1 else int(p.shape[0])


def _fill(p, values):
    p.data = backend.to_device(values.astype(p.dtype, copy=False), p.device)
    return p


def normal_(p, mean=0.0, std=1.0):
    return _fill(p, backend.rng().normal(mean, std, size=p.shape))


def uniform_(p, a=0.0, b=1.0):
    return _fill(p, backend.rng().uniform(a, b, size=p.shape))


def constant_(p, value):
    return _fill(p, np.full(p.shape, value))


def zeros_(p):
    return constant_(p, 0.0)


def kaiming_normal_(p):
    return normal_(p, 0.0, math.sqrt(2.0 / fan_in(p)))


def default_uniform_(weight, bias=None):
    bound = 1.0 / math.sqrt(fan_in(weight))
    uniform_(weight, -bound, bound)
    if bias is not None:
        uniform_(bias, -bound, bound)
