"""im2col and col2im: the data movement that turns convolution into a matrix product.

For an input x (N, C, H, W), a kernel kH x kW, stride (sH, sW) and zero padding (pH, pW),
the output has
    OH = (H + 2 pH - kH) // sH + 1,    OW = (W + 2 pW - kW) // sW + 1
positions, and im2col gathers, for every kernel offset (i, j), the input pixels that
offset sees at every output position:
    cols[n, c, i, j, oh, ow] = x_padded[n, c, i + sH*oh, j + sW*ow]
For a fixed offset (i, j) that is one strided slice of the padded input, and for all
offsets at once it is one strided view (``as_strided``): im2col copies that view out.
col2im is its adjoint: it scatters (adds) the columns back through the same slices, a
loop of kH*kW strided ``+=`` (not N*C*OH*OW scalar updates, and not ``np.add.at``),
which is exactly the gradient of im2col. Overlapping windows add up, which is why it is
``+=`` over offsets, not an assignment.

``im2col_batch_last`` and ``col2im_batch_last`` are the same two with the batch as the last axis,
cols (C, kH, kW, OH, OW, N): the layout of conv2d's images-side-by-side route, whose copies and sums
then run over rows of OW * N numbers.
"""
from .. import backend
from ..parallel import for_batch
from ..shapes import conv_output_size


def im2col(x, kernel_size, stride, padding):
    """x (N, C, H, W) ndarray -> cols (N, C, kH, kW, OH, OW), a new contiguous array.

    cols is first a strided *view* of the padded input (no data moves): stepping oh moves sH
    rows, stepping i moves one row, so element [n, c, i, j, oh, ow] is x_pad[n, c, sH*oh + i,
    sW*ow + j]. One copy then lays it out contiguously for the matrix product. (The loop over
    kernel offsets, as in col2im below, gives the same array; the single copy is ~1.5x faster.)
    """
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    OH, OW = conv_output_size(H, kH, sH, pH), conv_output_size(W, kW, sW, pW)
    if pH or pW:
        padded = xp.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=x.dtype)  # (N, C, H + 2pH, W + 2pW)
        padded[:, :, pH:pH + H, pW:pW + W] = x
        x = padded
    else:
        x = xp.ascontiguousarray(x)
    bN, bC, bH, bW = x.strides                                          # bytes per step of each axis
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, kH, kW, OH, OW), strides=(bN, bC, bH, bW, bH * sH, bW * sW))
    cols = xp.empty(view.shape, dtype=x.dtype)

    def copy(s):                                                        # s: a slice of the batch
        cols[s] = view[s]
    for_batch(xp, N, copy, cols.size // max(N, 1))
    return cols


def im2col_batch_last(x, kernel_size, stride, padding):
    """x (N, C, H, W) ndarray -> cols (C, kH, kW, OH, OW, N): the columns of ``im2col`` with the batch as
    the last axis, so that (C*kH*kW, OH*OW*N) is one matrix with the images side by side
    (``conv2d._forward_side_by_side``), cols[c, i, j, oh, ow, n] = x_pad[n, c, sH*oh + i, sW*ow + j].

    The input is first copied, padded, to (C, H + 2pH, W + 2pW, N); then at stride 1 each row of the copy
    out of the strided view is OW * N adjacent numbers instead of OW (13 for the mini net's conv2, 6 for
    conv3-conv5): 0.33 against 1.7 ms for the mini net's conv2-conv5 at 16 images, one thread
    (the copy with the images as the fourth axis, which this replaced).
    """
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    OH, OW = conv_output_size(H, kH, sH, pH), conv_output_size(W, kW, sW, pW)
    padded = xp.zeros((C, H + 2 * pH, W + 2 * pW, N), dtype=x.dtype)  # (C, H + 2pH, W + 2pW, N)
    padded[:, pH:pH + H, pW:pW + W] = x.transpose(1, 2, 3, 0)
    bC, bH, bW, bN = padded.strides                                     # bytes per step of each axis
    view = xp.lib.stride_tricks.as_strided(
        padded, shape=(C, kH, kW, OH, OW, N), strides=(bC, bH, bW, bH * sH, bW * sW, bN))
    cols = xp.empty(view.shape, dtype=x.dtype)

    def copy(s):                                                        # s: a slice of the channels
        cols[s] = view[s]
    for_batch(xp, C, copy, cols.size // max(C, 1))
    return cols


def col2im(cols, x_shape, stride, padding):
    """cols (N, C, kH, kW, OH, OW) -> dx (N, C, H, W): the sum of every column entry
    into the input pixel it was copied from (the adjoint of im2col)."""
    xp = backend.xp_of(cols)
    N, C, H, W = x_shape
    _, _, kH, kW, OH, OW = cols.shape
    (sH, sW), (pH, pW) = stride, padding
    dx = xp.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=cols.dtype)

    def scatter(s):                                                     # s: a slice of the batch
        for i in range(kH):
            for j in range(kW):
                dx[s, :, i:i + sH * (OH - 1) + 1:sH, j:j + sW * (OW - 1) + 1:sW] += cols[s, :, i, j]
    for_batch(xp, N, scatter, cols.size // max(N, 1))
    return dx[:, :, pH:pH + H, pW:pW + W]


def col2im_batch_last(dcols, padding, x_size):
    """dcols (C, kH, kW, OH, OW, N) -> dx (C, H, W, N): col2im at stride 1 with the batch as the last axis.

    The same sum as ``col2im``, dx_pad[c, i + oh, j + ow, n] += dcols[c, i, j, oh, ow, n], but every
    ``+=`` runs over contiguous rows of OW * N numbers instead of OW (13 for the mini net's conv2, where
    the NCHW version's per-row cost dominated: 18 ms against 4 ms for this one at batch 32)."""
    xp = backend.xp_of(dcols)
    C, kH, kW, OH, OW, N = dcols.shape
    (pH, pW), (H, W) = padding, x_size
    dx = xp.zeros((C, OH + kH - 1, OW + kW - 1, N), dtype=dcols.dtype)   # (C, H + 2pH, W + 2pW, N)
    for i in range(kH):
        for j in range(kW):
            dx[:, i:i + OH, j:j + OW] += dcols[:, i, j]
    return dx[:, pH:pH + H, pW:pW + W]
