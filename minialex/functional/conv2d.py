"""2-D convolution (cross-correlation, as in every framework) by im2col + matrix product.

    y[n, o, oh, ow] = b[o] + sum_{c in group(o), i, j} W[o, c, i, j] * x_pad[n, c, sH*oh + i, sW*ow + j]

Shapes (PyTorch's ``torch.nn.functional.conv2d``):
    x (N, C, H, W),  W (O, C/groups, kH, kW),  b (O,)  ->  y (N, O, OH, OW)
    OH = (H + 2 pH - kH) // sH + 1,  OW = (W + 2 pW - kW) // sW + 1

Groups split the channels into ``groups`` independent convolutions: output channels
[g*O/G, (g+1)*O/G) see only input channels [g*C/G, (g+1)*C/G). This is how the two-GPU
"towers" of the paper (Krizhevsky et al. 2012, Sec. 3.2, Fig. 2) are written on one
device: conv2, conv4 and conv5 use groups=2.

As matrices, with K = C/G*kH*kW and L = OH*OW, for each image n and group g:
    Y[n, g] (O/G, L) = W[g] (O/G, K) @ cols[n, g] (K, L)
    dW[g]  = sum_n dY[n, g] @ cols[n, g]^T        (O/G, K)
    dcols[n, g] = W[g]^T @ dY[n, g]               (K, L)  -> col2im -> dx
The cols layout (N, G, K, L) makes Y come out directly in NCHW order: no transpose
after the product. The plain nested-loop version is ``minialex.reference.conv2d``.

On the GPU (float32 CuPy arrays) the same maths runs in our own CUDA kernels,
``kernels/conv2d.cu`` (implicit GEMM: the im2col tiles are built in shared memory and never
stored), through ``minialex/cuda/kernels.py``; see ``_conv2d_cuda`` below.
"""
from ..tensor import Tensor
from ..cuda import use_cuda_kernels
from ._checks import check_same_device, check_tensor, pair, positive_int
from .im2col import col2im, conv_output_size, im2col


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    op = "conv2d"
    check_tensor(x, "input", op, ndim=4)
    check_tensor(weight, "weight", op, ndim=4)
    stride = pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    G = positive_int(groups, "groups", op)
    N, C, H, W = x.shape
    O, Cg, kH, kW = weight.shape
    if C % G:
        raise ValueError(f"{op}: input channels ({C}) must be divisible by groups ({G})")
    if O % G:
        raise ValueError(f"{op}: output channels ({O}, weight shape {weight.shape}) must be divisible by groups ({G})")
    if Cg * G != C:
        raise ValueError(f"{op}: input has {C} channels (shape {x.shape}) but weight of shape {weight.shape} "
                         f"with groups={G} expects {Cg * G}")
    if H + 2 * padding[0] < kH or W + 2 * padding[1] < kW:
        raise ValueError(f"{op}: kernel {kH}x{kW} is larger than the padded input "
                         f"{H + 2 * padding[0]}x{W + 2 * padding[1]} (input {H}x{W}, padding {padding})")
    if bias is not None:
        check_tensor(bias, "bias", op, ndim=1)
        if bias.shape[0] != O:
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({O},)")
    check_same_device(op, x, weight, bias)
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but weight is {weight.dtype}; convert one with .to()")

    if use_cuda_kernels(x):
        return _conv2d_cuda(x, weight, bias, stride, padding, G)
    xp = x.xp
    OH, OW = conv_output_size(H, kH, stride[0], padding[0]), conv_output_size(W, kW, stride[1], padding[1])
    Og, K, L = O // G, Cg * kH * kW, OH * OW
    cols = im2col(x.data, (kH, kW), stride, padding)        # (N, C, kH, kW, OH, OW)
    cols = cols.reshape(N, G, K, L)                         # (N, G, K, L): channels of a group are adjacent
    Wm = weight.data.reshape(G, Og, K)                      # (G, O/G, K)
    y = xp.matmul(Wm, cols)                                 # (N, G, O/G, L): one product per group, over the batch
    y = y.reshape(N, O, OH, OW)                             # (N, O, OH, OW)
    if bias is not None:
        y += bias.data.reshape(1, O, 1, 1)

    def backward(g):
        gY = g.reshape(N, G, Og, L)                         # (N, G, O/G, L)
        dx = dw = db = None
        if x.requires_grad:
            dcols = xp.matmul(Wm.transpose(0, 2, 1), gY)     # (N, G, K, L)
            dcols = dcols.reshape(N, C, kH, kW, OH, OW)
            dx = col2im(dcols, x.shape, stride, padding)    # (N, C, H, W)
        if weight.requires_grad:
            dW = xp.zeros((G, Og, K), dtype=g.dtype)
            for n in range(N):                              # sum over the batch of (O/G, L) @ (L, K)
                dW += gY[n] @ cols[n].transpose(0, 2, 1)
            dw = dW.reshape(weight.shape)                   # (O, C/G, kH, kW)
        if bias is not None and bias.requires_grad:
            db = g.sum(axis=(0, 2, 3))                      # (O,)
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y, parents, backward, "conv2d")


def _conv2d_cuda(x, weight, bias, stride, padding, groups):
    """GPU path: forward, backward-data and backward-weight kernels of kernels/conv2d.cu."""
    from ..cuda import kernels as K
    y = K.conv2d_forward(x.data, weight.data, None if bias is None else bias.data, stride, padding, groups)

    def backward(g):
        dx = dw = db = None
        if x.requires_grad:
            dx = K.conv2d_backward_data(g, weight.data, x.shape, stride, padding, groups)
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            dw, db = K.conv2d_backward_weight(x.data, g, weight.shape, stride, padding, groups,
                                              bias=bias is not None)
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y, parents, backward, "conv2d")
