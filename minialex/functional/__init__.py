"""minialex.functional: stateless ops with PyTorch's names (``import minialex.functional as F``).

One op per file, forward and backward side by side:

    conv2d               conv2d.py  (im2col/col2im in im2col.py, Winograd F(2x2,3x3) in winograd.py)
    linear               linear.py
    relu                 relu.py
    max_pool2d           max_pool2d.py  (the phase-plane algorithm in max_pool2d_phase_planes.py)
    local_response_norm  local_response_norm.py
    dropout              dropout.py
    softmax, log_softmax softmax.py
    cross_entropy        cross_entropy.py
    adaptive_avg_pool2d  adaptive_avg_pool2d.py
    flatten, reshape...  shape.py
    + - * / ** exp log   elementwise.py;  sum, mean in reduce.py;  matmul in matmul.py

Where an op has several algorithms, ``conv_algorithm`` and ``pool_algorithm`` choose (algorithms.py);
the argument checks shared by the ops are in _checks.py.
"""
from .adaptive_avg_pool2d import adaptive_avg_pool2d
from .algorithms import conv_algorithm, current_algorithm, current_pool_algorithm, pool_algorithm
from .conv2d import conv2d
from .cross_entropy import cross_entropy
from .dropout import dropout
from .elementwise import add, div, exp, log, mul, neg, pow, sub
from .linear import linear
from .local_response_norm import local_response_norm
from .matmul import matmul
from .max_pool2d import max_pool2d
from .reduce import mean, sum
from .relu import relu
from .shape import flatten, getitem, permute, reshape, transpose
from .softmax import log_softmax, softmax

__all__ = ["adaptive_avg_pool2d", "add", "conv2d", "conv_algorithm", "current_algorithm", "current_pool_algorithm", "cross_entropy", "div", "dropout", "exp", "flatten",
           "getitem", "linear", "local_response_norm", "log", "log_softmax", "matmul", "max_pool2d", "mean",
           "mul", "neg", "permute", "pool_algorithm", "pow", "relu", "reshape", "softmax", "sub", "sum", "transpose"]
