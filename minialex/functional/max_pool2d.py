"""Max-pooling over 2-D windows, including the paper's overlapping pooling
(kernel 3, stride 2: "z = 3 > s = 2", Krizhevsky et al. 2012, Sec. 3.4).

    y[n, c, oh, ow] = max_{0<=i<kH, 0<=j<kW} x_pad[n, c, sH*oh + i, sW*ow + j]

Shapes: x (N, C, H, W) -> y (N, C, OH, OW), with, as in PyTorch,
    OH = (H + 2 pH - kH) // sH + 1                       (floor, the default)
    OH = ceil((H + 2 pH - kH) / sH) + 1,                 (ceil_mode=True, Caffe's rounding)
         minus 1 if that last window would start inside the right padding.
Padding counts as -infinity, so it is never the maximum.

Backward: the whole gradient of an output goes to the input element that was its
maximum (the argmax); overlapping windows can send several gradients to one input,
and they add up. Tie rule: the FIRST maximum in the window's row-major scan order
(i, then j) wins, as in PyTorch's CPU kernel; test gradients on tie-free inputs.

How, below: kernel offset k = i*kW + j of every window at once is one strided view of x_pad, an
(N, C, OH, OW) array. The forward keeps the running maximum over the kH*kW views and, in ``argmax``,
which k holds it; the backward adds each output's gradient back through the view of that k.

The same result by other paths: on the CPU the default, ``F.pool_algorithm("auto")``, takes
``max_pool2d_phase_planes.py``, the same running maximum on contiguous stride-phase planes, faster and
equal bit for bit (``F.pool_algorithm("plain")`` runs the code below; the choice is in ``algorithms.py``
as convolution's is). Float32 CuPy arrays take ``kernels/maxpool.cu``: a forward that stores the argmax,
a deterministic backward that gathers per input pixel.

NaN: the output is NaN, but no comparison with NaN holds, so its gradient goes where the running
maximum was when the first NaN came (to the NaN itself only at offset 0); PyTorch and maxpool.cu send it
to the NaN. A window that is all -inf and starts in the padding sends its gradient nowhere.
"""
from ..cuda import use_cuda_kernels
from ..shapes import pool_output_size
from ..tensor import Tensor
from ._checks import check_max_pool2d_args, check_pool_output_size
from .algorithms import current_pool_algorithm, use_phase_planes
from .max_pool2d_phase_planes import max_pool2d_phase_planes


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    (kH, kW), (sH, sW), (pH, pW) = check_max_pool2d_args(x, kernel_size, stride, padding)
    N, C, H, W = x.shape
    OH = pool_output_size(H, kH, sH, pH, ceil_mode)
    OW = pool_output_size(W, kW, sW, pW, ceil_mode)
    check_pool_output_size(x, (kH, kW), (pH, pW), (OH, OW), "max_pool2d")
    if use_cuda_kernels(x):
        return _max_pool2d_cuda(x, (kH, kW), (sH, sW), (pH, pW), ceil_mode)
    if use_phase_planes(current_pool_algorithm()):
        return max_pool2d_phase_planes(x, (kH, kW), (sH, sW), (pH, pW), (OH, OW))
    xp = x.xp
    bottom = max(0, (OH - 1) * sH + kH - H - pH)        # rows and columns of -inf after x that the
    right = max(0, (OW - 1) * sW + kW - W - pW)         # last window needs (ceil_mode may need some)
    x_pad = xp.pad(x.data, ((0, 0), (0, 0), (pH, bottom), (pW, right)),
                   constant_values=-xp.inf)           # (N, C, pH + H + bottom, pW + W + right)

    def window(k, a):
        """The (N, C, OH, OW) view of ``a`` at kernel offset k = i*kW + j of every window."""
        i, j = divmod(k, kW)
        return a[:, :, i:i + sH * (OH - 1) + 1:sH, j:j + sW * (OW - 1) + 1:sW]

    y = window(0, x_pad).copy()                         # (N, C, OH, OW): the running maximum
    argmax = xp.zeros(y.shape, dtype=xp.int32)          # the offset k that holds it
    for k in range(1, kH * kW):
        v = window(k, x_pad)
        argmax[v > y] = k                               # strictly: a later equal value does not win
        xp.maximum(y, v, out=y)

    def backward(g):
        dx_pad = xp.zeros(x_pad.shape, dtype=g.dtype)
        for k in range(kH * kW):
            window(k, dx_pad)[...] += g * (argmax == k)     # windows overlap: gradients add up
        return (dx_pad[:, :, pH:pH + H, pW:pW + W],)   # (N, C, H, W)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")


def _max_pool2d_cuda(x, kernel_size, stride, padding, ceil_mode):
    """GPU path: max_pool2d forward/backward kernels of kernels/maxpool.cu."""
    from ..cuda import kernels as cuda_kernels
    y, argmax = cuda_kernels.max_pool2d_forward(x.data, kernel_size, stride, padding, ceil_mode)

    def backward(g):
        return (cuda_kernels.max_pool2d_backward(g, argmax, x.shape, kernel_size, stride, padding),)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")
