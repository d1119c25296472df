"""The layers of AlexNet as Modules: thin wrappers over ``minialex.functional``.

Each holds its hyper-parameters and (for Conv2d and Linear) its Parameters; the maths,
forward and backward, lives in the functional op named in its docstring.
"""
import numbers

import numpy as np

from .. import functional as F
from ..functional._checks import positive_int
from ..shapes import pair
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution; see ``minialex/functional/conv2d.py``. weight (O, C/groups, kH, kW), bias (O,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        self.in_channels = positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d", minimum=0)
        self.groups = positive_int(groups, "groups", "Conv2d")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        init.default_uniform_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Linear(Module):
    """Fully connected layer; see ``minialex/functional/linear.py``. weight (out, in), bias (out,)."""

    def __init__(self, in_features, out_features, bias=True):
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        init.default_uniform_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(x, 0); see ``minialex/functional/relu.py``."""

    def forward(self, x):
        return F.relu(x)


class MaxPool2d(Module):
    """Max-pooling (overlapping when kernel > stride); see ``minialex/functional/max_pool2d.py``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, ceil_mode={self.ceil_mode}"


class LocalResponseNorm(Module):
    """LRN across channels in PyTorch's convention (alpha divided by size);
    see ``minialex/functional/local_response_norm.py`` for the paper's mapping."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size = positive_int(size, "size", "LocalResponseNorm")
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Dropout(Module):
    """Inverted dropout, active only in training mode; see ``minialex/functional/dropout.py``."""

    def __init__(self, p=0.5):
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W); see ``minialex/functional/shape.py``."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size; see ``minialex/functional/adaptive_avg_pool2d.py``."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Softmax(Module):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class CrossEntropyLoss(Module):
    """Softmax + negative log-likelihood; see ``minialex/functional/cross_entropy.py``."""

    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction)
