"""im2col and col2im: the data movement that turns convolution into a matrix product.

For an input x (N, C, H, W), a kernel kH x kW, stride (sH, sW) and zero padding (pH, pW),
the output has
    OH = (H + 2 pH - kH) // sH + 1,    OW = (W + 2 pW - kW) // sW + 1
positions, and im2col gathers, for every kernel offset (i, j), the input pixels that
offset sees at every output position:
    cols[n, c, i, j, oh, ow] = x_padded[n, c, i + sH*oh, j + sW*ow]
Each offset is one strided slice of the padded input, so the loop runs kH*kW times
(not N*C*OH*OW times). col2im is its adjoint: it scatters (adds) the columns back
through the same slices, which is exactly the gradient of im2col. Overlapping
windows add up, which is why it is ``+=`` over offsets, not an assignment.
"""
from .. import backend


def conv_output_size(size, kernel, stride, padding):
    """Number of window positions along one axis: (size + 2*padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_size, stride, padding):
    """x (N, C, H, W) ndarray -> cols (N, C, kH, kW, OH, OW), a new contiguous array."""
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    OH, OW = conv_output_size(H, kH, sH, pH), conv_output_size(W, kW, sW, pW)
    if pH or pW:
        x = xp.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H + 2pH, W + 2pW)
    cols = xp.empty((N, C, kH, kW, OH, OW), dtype=x.dtype)
    for i in range(kH):
        for j in range(kW):
            cols[:, :, i, j] = x[:, :, i:i + sH * (OH - 1) + 1:sH, j:j + sW * (OW - 1) + 1:sW]
    return cols


def col2im(cols, x_shape, stride, padding):
    """cols (N, C, kH, kW, OH, OW) -> dx (N, C, H, W): the sum of every column entry
    into the input pixel it was copied from (the adjoint of im2col)."""
    xp = backend.xp_of(cols)
    N, C, H, W = x_shape
    _, _, kH, kW, OH, OW = cols.shape
    (sH, sW), (pH, pW) = stride, padding
    dx = xp.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=cols.dtype)
    for i in range(kH):
        for j in range(kW):
            dx[:, :, i:i + sH * (OH - 1) + 1:sH, j:j + sW * (OW - 1) + 1:sW] += cols[:, :, i, j]
    return dx[:, :, pH:pH + H, pW:pW + W]
