"""minialex: AlexNet from parts a person can read.

    import minialex
    import minialex.functional as F
    from minialex import nn

See README.md for a tour; every layer's forward and backward is one file in
``minialex/functional/``.
"""
from . import data, functional, models, nn, optim
from .backend import manual_seed
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = ["GradcheckError", "Tensor", "data", "functional", "models", "optim", "gradcheck", "is_grad_enabled", "manual_seed", "nn",
           "no_grad", "tensor"]
