"""Rectified linear unit, the paper's non-linearity (Krizhevsky et al. 2012, Sec. 3.1).

    y = max(x, 0)        dL/dx = g * [x > 0]

At x = 0 exactly the derivative is taken as 0 (as PyTorch does). On float32 CuPy data the
forward and backward are one pass each of the bias_act kernels (kernels/elementwise.cu), with no
bias; [y > 0] is [x > 0], so the backward needs only the output.
"""
from ..cuda import use_cuda_kernels
from ..tensor import Tensor
from ._checks import check_tensor


def relu(x):
    check_tensor(x, "input", "relu")
    if use_cuda_kernels(x) and x.ndim >= 2:
        return _relu_cuda(x)
    out = x.xp.maximum(x.data, 0)

    def backward(g):
        return (g * (x.data > 0),)
    return Tensor.from_op(out, (x,), backward, "relu")


def _relu_cuda(x):
    """The same with our kernels: y = bias_act(x, no bias), dL/dx = g * [y > 0].

    (The kernel's backward also sums the bias gradient per channel; a ReLU on its own drops that.)
    """
    from ..cuda import kernels as cuda_kernels
    out = cuda_kernels.bias_act(x.data, None, relu=True)
    return Tensor.from_op(out, (x,), lambda g: (cuda_kernels.bias_act_backward(g, out, relu=True)[0],), "relu")
