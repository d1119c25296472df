"""minialex.nn: Modules with PyTorch's names. The maths lives in ``minialex.functional``."""
from . import init
from .layers import (AdaptiveAvgPool2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Linear, LocalResponseNorm,
                     MaxPool2d, ReLU, Softmax)
from .module import Module, Parameter, Sequential

__all__ = ["AdaptiveAvgPool2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "Linear",
           "LocalResponseNorm", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Softmax", "init"]
