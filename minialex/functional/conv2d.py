"""2-D convolution (cross-correlation, as in every framework) by im2col + matrix product.

    y[n, o, oh, ow] = b[o] + sum_{c in group(o), i, j} W[o, c, i, j] * x_pad[n, c, sH*oh + i, sW*ow + j]

Shapes (PyTorch's ``torch.nn.functional.conv2d``):
    x (N, C, H, W),  W (O, C/groups, kH, kW),  b (O,)  ->  y (N, O, OH, OW)
    OH = (H + 2 pH - kH) // sH + 1,  OW = (W + 2 pW - kW) // sW + 1

Groups split the channels into ``groups`` independent convolutions of Cg = C/groups input and
Og = O/groups output channels: output channels [g*Og, (g+1)*Og) see only input channels
[g*Cg, (g+1)*Cg). This is how the two-GPU "towers" of the paper (Krizhevsky et al. 2012,
Sec. 3.2, Fig. 2) are written on one device: conv2, conv4 and conv5 use groups=2.

As matrices, with K = Cg*kH*kW and L = OH*OW, for each image n and group g:
    Y[n, g] (Og, L) = W[g] (Og, K) @ cols[n, g] (K, L)
    dW[g]  = sum_n dY[n, g] @ cols[n, g]^T        (Og, K)
    dcols[n, g] = W[g]^T @ dY[n, g]               (K, L)  -> col2im -> dx
The cols layout (N, groups, K, L) makes Y come out directly in NCHW order: no transpose
after the product. The plain nested-loop version is ``minialex.reference.conv2d``.

Three faster routes, each tested against that reference and against im2col, chosen per call by
``conv_algorithm`` (``algorithms.py``: "auto" takes them where they pay):
  * 3x3 stride-1 layers (AlexNet's conv3..conv5) take Winograd's F(2x2, 3x3), 2.25x fewer
    multiplications: ``winograd.py`` (Lavin & Gray 2016), forward and weight gradient;
  * at stride 1 the data gradient is a convolution of the padded output gradient with the
    flipped filters (``_data_grad``); where that convolution takes Winograd, it needs no col2im.
  * layers with few output positions (OH*OW < 256: the mini net's conv2..conv5) put the images side by
    side, cols (groups, K, L*N) with the batch last, so that the forward and the weight gradient are one
    product per group for the whole batch instead of one per image (``_forward_side_by_side``).

On the CPU with one BLAS thread the batch runs in pieces of whole images, one piece per thread at a
time (``_forward_in_pieces``, ``_backward_in_pieces``): each piece is the convolution above on fewer
images, and the weight gradient is the sum of the pieces' in batch order. With several BLAS threads
the whole batch is one piece and BLAS shares each product among its threads.

On the GPU (float32 CuPy arrays) the same maths runs in our own CUDA kernels,
``kernels/conv2d.cu`` (implicit GEMM: the im2col tiles are built in shared memory and never
stored), through ``minialex/cuda/kernels.py``; see ``_conv2d_cuda`` below.
"""
from .. import backend
from ..parallel import for_slices, images_per_piece, num_threads
from ..shapes import ceil_div, conv_output_size
from ..tensor import Tensor
from ..cuda import use_cuda_kernels
from . import winograd
from ._checks import check_conv2d_args
from .algorithms import current_algorithm, use_side_by_side, use_winograd
from .im2col import col2im, col2im_batch_last, im2col, im2col_batch_last


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    stride, padding, groups = check_conv2d_args(x, weight, bias, stride, padding, groups)
    if use_cuda_kernels(x):
        return _conv2d_cuda(x, weight, bias, stride, padding, groups)
    O = weight.shape[0]
    algorithm = current_algorithm()                  # the backward uses the forward's choice, whatever the
    chunk = images_per_piece(x.data)                 # setting is by then; the batch runs in pieces of chunk
    y, saved = _forward_in_pieces(x.data, weight.data, stride, padding, groups, algorithm, chunk)  # images
    if bias is not None:
        y += bias.data.reshape(1, O, 1, 1)                                 # (N, O, OH, OW)
    if not weight.requires_grad:
        saved = None                                                       # only the weight gradient needs it

    def backward(g):
        dx, dw = _backward_in_pieces(g, weight.data, saved, x.shape, stride, padding, groups, algorithm, chunk,
                                     x.requires_grad, weight.requires_grad)  # (N, C, H, W), (O, Cg, kH, kW)
        db = g.sum(axis=(0, 2, 3)) if bias is not None and bias.requires_grad else None   # (O,)
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y, parents, backward, "conv2d")


# ----------------------------------------------------------------------------- the batch in pieces
def _forward_in_pieces(x, w, stride, padding, groups, algorithm, chunk):
    """``_forward`` of x (N, C, H, W) in pieces of ``chunk`` images, side by side on the threads
    (``minialex.parallel.images_per_piece`` says when: on NumPy with one BLAS thread). Returns
    y (N, O, OH, OW) and, per piece in batch order, what its weight gradient needs."""
    N = x.shape[0]
    if chunk >= N:
        y, saved = _forward(x, w, stride, padding, groups, algorithm)
        return backend.xp_of(x).ascontiguousarray(y), [saved]
    OH, OW = (conv_output_size(*a) for a in zip(x.shape[2:], w.shape[2:], stride, padding))
    y = backend.xp_of(x).empty((N, w.shape[0], OH, OW), dtype=x.dtype)    # (N, O, OH, OW)

    def piece(s):                                                          # s: a slice of the batch
        y[s], saved = _forward(x[s], w, stride, padding, groups, algorithm)
        return saved
    return y, for_slices(N, piece, chunk)


def _backward_in_pieces(g, w, saved, x_shape, stride, padding, groups, algorithm, chunk, need_dx, need_dw):
    """The data and weight gradients (or None where not needed) from g (N, O, OH, OW), piece by piece as
    the forward ran. Each piece's weight gradient covers its images; they are summed in batch order, so
    the result does not depend on which thread ran which piece."""
    N = g.shape[0]
    dx = backend.xp_of(g).empty(x_shape, dtype=g.dtype) if need_dx and chunk < N else None  # (N, C, H, W)

    def piece(s):                                                          # s: a slice of the batch
        dx_s = dw_s = None
        if need_dx:
            dx_s = _data_grad(g[s], w, (s.stop - s.start,) + tuple(x_shape[1:]), stride, padding, groups, algorithm)
        if need_dw:
            dw_s = _weight_grad(g[s], saved[s.start // chunk], w.shape, groups)   # (O, Cg, kH, kW)
        if dx is not None:
            dx[s], dx_s = dx_s, None
        return dx_s, dw_s
    if chunk >= N:
        return piece(slice(0, N))
    dw = None
    for _, dw_s in for_slices(N, piece, chunk):
        dw = dw_s if dw is None else dw + dw_s
    return dx, dw


# ----------------------------------------------------------------------------- one piece
def _forward(x, w, stride, padding, groups, algorithm):
    """x (N, C, H, W), w (O, Cg, kH, kW) arrays -> (y (N, O, OH, OW), what the weight gradient needs)."""
    if use_winograd(x, w.shape, stride, padding, groups, algorithm):
        y, V = winograd.conv2d(x, w, padding, groups)              # see winograd.py
        return y, ("winograd", V)
    if use_side_by_side(x, w.shape, stride, padding, algorithm):
        return _forward_side_by_side(x, w, stride, padding, groups)
    xp = backend.xp_of(x)
    N = x.shape[0]
    O, Cg, kH, kW = w.shape
    cols = im2col(x, (kH, kW), stride, padding)             # (N, C, kH, kW, OH, OW)
    OH, OW = cols.shape[4:]
    cols = cols.reshape(N, groups, Cg * kH * kW, OH * OW)   # (N, groups, K, L): channels of a group are adjacent
    Wm = w.reshape(groups, O // groups, Cg * kH * kW)       # (groups, Og, K)
    y = xp.matmul(Wm, cols)                                 # (N, groups, Og, L): one product per group
    return y.reshape(N, O, OH, OW), ("im2col", cols)


def _forward_side_by_side(x, w, stride, padding, groups):
    """The im2col product with the images side by side: one (Og, K) @ (K, L*N) product per group instead of
    one per image and group, for layers with few output positions L (``algorithms.use_side_by_side``).
    The columns have the batch as their last axis (``im2col_batch_last``), the order the data gradient's
    ``col2im_batch_last`` uses too. Returns y as a strided view (N, O, OH, OW) of the product's
    (groups, Og, L*N) layout."""
    xp = backend.xp_of(x)
    N = x.shape[0]
    O, Cg, kH, kW = w.shape
    cols = im2col_batch_last(x, (kH, kW), stride, padding)     # (C, kH, kW, OH, OW, N)
    OH, OW = cols.shape[3:5]
    cols = cols.reshape(groups, Cg * kH * kW, OH * OW * N)     # (groups, K, L*N)
    Y = xp.matmul(w.reshape(groups, O // groups, Cg * kH * kW), cols)   # (groups, Og, L*N)
    y = Y.reshape(O, OH, OW, N).transpose(3, 0, 1, 2)          # (N, O, OH, OW) view
    return y, ("side_by_side", cols)


def _data_grad(g, w, x_shape, stride, padding, groups, algorithm):
    """dL/dx (N, C, H, W) from g = dL/dy (N, O, OH, OW).

    At stride 1 (and padding < kernel) the data gradient is itself a convolution,
        dx[n, c] = sum_o conv(g[n, o] padded by k-1-p, W[o, c] flipped in both axes),
    i.e. ``_forward`` of g with the filters flipped and their in/out axes swapped per group. That route
    is taken when Winograd computes that convolution (3x3 layers): it needs no col2im. Otherwise the
    columns' gradient W^T @ g is scattered back by col2im (for a 5x5 layer the convolution route would
    im2col the padded gradient, O/C times larger than these columns: 2.4 GB for conv2 at batch 128);
    under "auto", at stride 1 on the CPU, with the batch as the last axis: ``_data_grad_batch_last``."""
    xp = backend.xp_of(g)
    N, C = x_shape[:2]
    O, Cg, kH, kW = w.shape
    Og = O // groups
    pH, pW = padding
    flipped_padding = (kH - 1 - pH, kW - 1 - pW)
    if pH < kH and pW < kW and use_winograd(g, (C, Og, kH, kW), stride, flipped_padding, groups, algorithm):
        w_t = w.reshape(groups, Og, Cg, kH, kW)[:, :, :, ::-1, ::-1]  # flipped, and per group
        w_t = w_t.transpose(0, 2, 1, 3, 4)                            # (groups, Cg, Og, kH, kW)
        w_t = xp.ascontiguousarray(w_t).reshape(C, Og, kH, kW)        # filters of dx's channels
        return winograd.conv2d(g, w_t, flipped_padding, groups)[0]    # stride 1, as applies() says
    if algorithm == "auto" and stride == (1, 1) and xp.__name__ == "numpy":
        return _data_grad_batch_last(g, w, x_shape, padding, groups)
    OH, OW = g.shape[2:]
    gY = g.reshape(N, groups, Og, OH * OW)                  # (N, groups, Og, L)
    Wm = w.reshape(groups, Og, Cg * kH * kW)                # (groups, Og, K)
    dcols = xp.matmul(Wm.transpose(0, 2, 1), gY)            # (N, groups, K, L)
    return col2im(dcols.reshape(N, C, kH, kW, OH, OW), x_shape, stride, padding)


def _data_grad_batch_last(g, w, x_shape, padding, groups):
    """The col2im route of ``_data_grad`` at stride 1 with the batch as the last axis: the same products
    and sums as col2im's, but the products are one per group over all images, (K, Og) @ (Og, L*N),
    and col2im adds rows of OW * N numbers (``col2im_batch_last``). The channels are cut into pieces
    (one per group, or halves of one group) that run on the threads of ``minialex.parallel``: each
    piece's product uses one BLAS thread's worth of work and its col2im needs no other piece.
    Measured on the mini net's conv2 at batch 32 (2-core machine, CPU time): 28.9 -> 15.6 ms."""
    xp = backend.xp_of(g)
    N, O, OH, OW = g.shape
    C, H, W = x_shape[1:]
    _, Cg, kH, kW = w.shape
    Og = O // groups
    gT = xp.ascontiguousarray(g.transpose(1, 2, 3, 0)).reshape(groups, Og, OH * OW * N)   # (groups, Og, L*N)
    wT = w.reshape(groups, Og, Cg, kH * kW).transpose(0, 2, 3, 1)                        # (groups, Cg, kH*kW, Og)
    dx = xp.empty(x_shape, dtype=g.dtype)                                                # (N, C, H, W)
    per_group = 1 if groups >= num_threads() else ceil_div(num_threads(), groups)
    step = ceil_div(Cg, per_group)
    pieces = [(grp, c, min(Cg, c + step)) for grp in range(groups) for c in range(0, Cg, step)]

    def channels(s):                                  # s: one piece, channels [c0, c1) of group grp
        grp, c0, c1 = pieces[s.start]
        dcols = xp.matmul(wT[grp, c0:c1].reshape((c1 - c0) * kH * kW, Og), gT[grp])    # (c*kH*kW, L*N)
        dxT = col2im_batch_last(dcols.reshape(c1 - c0, kH, kW, OH, OW, N), padding, (H, W))  # (c, H, W, N)
        dx[:, grp * Cg + c0:grp * Cg + c1] = dxT.transpose(3, 0, 1, 2)
    for_slices(len(pieces), channels, chunk=1)
    return dx


def _weight_grad(g, saved, w_shape, groups):
    """dL/dW (O, Cg, kH, kW) from g = dL/dy (N, O, OH, OW) and what ``_forward`` kept."""
    algorithm, kept = saved
    xp = backend.xp_of(g)
    if algorithm == "winograd":
        return winograd.conv2d_weight_grad(g, kept, groups)
    O = w_shape[0]
    Og = O // groups
    if algorithm == "side_by_side":
        cols = kept                                         # (groups, K, L*N)
        N, L = g.shape[0], g.shape[2] * g.shape[3]
        gT = xp.ascontiguousarray(g.transpose(1, 2, 3, 0)).reshape(groups, Og, L * N)  # (groups, Og, L*N)
        # dW^T = cols @ gT^T, (K, L*N) @ (L*N, Og): with K rows the product runs ~1.7x faster than dW = gT @
        # cols^T with Og rows (measured on the mini net's conv2, one BLAS thread: 91 against 52 GFLOP/s)
        dWt = xp.matmul(cols, gT.transpose(0, 2, 1))                                   # (groups, K, Og)
        return xp.ascontiguousarray(dWt.transpose(0, 2, 1)).reshape(w_shape)         # (O, Cg, kH, kW)
    cols = kept                                             # (N, groups, K, L)
    N, _, K, L = cols.shape
    gY = g.reshape(N, groups, Og, L)                        # (N, groups, Og, L)
    dW = xp.zeros((groups, Og, K), dtype=g.dtype)
    for n in range(N):                                      # sum over the batch of (Og, L) @ (L, K)
        dW += gY[n] @ cols[n].transpose(0, 2, 1)
    return dW.reshape(w_shape)                              # (O, Cg, kH, kW)


def _conv2d_cuda(x, weight, bias, stride, padding, groups):
    """GPU path: forward, backward-data and backward-weight kernels of kernels/conv2d.cu."""
    from ..cuda import kernels as cuda_kernels
    b = None if bias is None else bias.data
    y = cuda_kernels.conv2d_forward(x.data, weight.data, b, stride, padding, groups)

    def backward(g):
        dx = dw = db = None
        if x.requires_grad:
            dx = cuda_kernels.conv2d_backward_data(g, weight.data, x.shape, stride, padding, groups)
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            dw, db = cuda_kernels.conv2d_backward_weight(x.data, g, weight.shape, stride, padding, groups,
                                                         bias=bias is not None)
        return dx, dw, db

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y, parents, backward, "conv2d")
