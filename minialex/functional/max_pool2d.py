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

On the GPU (float32 CuPy arrays): ``kernels/maxpool.cu``, a forward that stores the argmax
and a deterministic backward that gathers per input pixel (no atomics).
"""
import math

from ..tensor import Tensor
from ..cuda import use_cuda_kernels
from ..parallel import for_batch
from ._checks import check_tensor, pair


def pool_output_size(size, kernel, stride, padding, ceil_mode):
    """Number of windows along one axis (PyTorch's ``pooling_output_shape``)."""
    if ceil_mode:
        out = math.ceil((size + 2 * padding - kernel) / stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window would start in the padding
            out -= 1
        return out
    return (size + 2 * padding - kernel) // stride + 1


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    op = "max_pool2d"
    check_tensor(x, "input", op, ndim=4)
    kH, kW = pair(kernel_size, "kernel_size", op)
    sH, sW = pair(kernel_size if stride is None else stride, "stride", op)
    pH, pW = pair(padding, "padding", op, minimum=0)
    if 2 * pH > kH or 2 * pW > kW:
        raise ValueError(f"{op}: padding {(pH, pW)} must be at most half the kernel size {(kH, kW)}")
    N, C, H, W = x.shape
    OH = pool_output_size(H, kH, sH, pH, ceil_mode)
    OW = pool_output_size(W, kW, sW, pW, ceil_mode)
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: kernel {kH}x{kW} is larger than the padded input "
                         f"{H + 2 * pH}x{W + 2 * pW} (input shape {x.shape}, padding {(pH, pW)})")
    if use_cuda_kernels(x):
        return _max_pool2d_cuda(x, (kH, kW), (sH, sW), (pH, pW), ceil_mode)
    xp = x.xp
    # pad with -inf: pH/pW before, and after whatever the last window needs (ceil_mode may need more)
    bottom = max(0, (OH - 1) * sH + kH - H - pH)
    right = max(0, (OW - 1) * sW + kW - W - pW)
    xpad = x.data
    if pH or pW or bottom or right:
        xpad = xp.pad(x.data, ((0, 0), (0, 0), (pH, bottom), (pW, right)), constant_values=-xp.inf)

    def window(i, j, a):
        """The (N, C, OH, OW) strided view of ``a`` seen by kernel offset (i, j)."""
        return a[:, :, i:i + sH * (OH - 1) + 1:sH, j:j + sW * (OW - 1) + 1:sW]

    # forward: a running maximum over the kH*kW offsets, one cheap pass each
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)

    def running_max(s):                                 # s: a slice of the batch
        y[s] = window(0, 0, xpad)[s]
        for idx in range(1, kH * kW):
            xp.maximum(y[s], window(idx // kW, idx % kW, xpad)[s], out=y[s])
    for_batch(xp, N, running_max, kH * kW * C * OH * OW)

    def backward(g):
        # Which offset held each window's maximum is found here, not stored by the forward (which
        # then costs a quarter as much, and nothing extra at inference): scan the offsets in order
        # and give the gradient to the first one equal to the maximum (the tie rule above).
        dxpad = xp.zeros(xpad.shape, dtype=g.dtype)    # (N, C, H + pH + bottom, W + pW + right)

        def route(s):                                   # s: a slice of the batch
            shape = y[s].shape
            unclaimed = xp.ones(shape, dtype=bool)      # windows whose maximum is not found yet
            hit = xp.empty(shape, dtype=bool)
            routed = xp.empty(shape, dtype=g.dtype)
            for idx in range(kH * kW):
                xp.equal(window(idx // kW, idx % kW, xpad)[s], y[s], out=hit)
                hit &= unclaimed
                unclaimed ^= hit
                xp.multiply(g[s], hit, out=routed)
                window(idx // kW, idx % kW, dxpad)[s] += routed
        for_batch(xp, N, route, kH * kW * C * OH * OW)
        return (dxpad[:, :, pH:pH + H, pW:pW + W],)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")


def _max_pool2d_cuda(x, kernel_size, stride, padding, ceil_mode):
    """GPU path: max_pool2d forward/backward kernels of kernels/maxpool.cu."""
    from ..cuda import kernels as K
    y, argmax = K.max_pool2d_forward(x.data, kernel_size, stride, padding, ceil_mode)

    def backward(g):
        return (K.max_pool2d_backward(g, argmax, x.shape, kernel_size, stride, padding),)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")
