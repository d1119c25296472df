"""Adaptive average pooling to a fixed output size (used by torchvision's AlexNet).

Output cell (i, j) averages input rows [floor(i*H/OH), ceil((i+1)*H/OH)) and columns
[floor(j*W/OW), ceil((j+1)*W/OW)) (PyTorch's bins: they may overlap by one when H is
not a multiple of OH). Shapes: x (N, C, H, W) -> y (N, C, OH, OW).
Backward: each input pixel of a bin receives g / (bin height * bin width).
"""
from ..shapes import ceil_div, pair
from ..tensor import Tensor
from ._checks import check_tensor


def _bins(size, out):
    return [((i * size) // out, ceil_div((i + 1) * size, out)) for i in range(out)]  # (start, end) per cell


def adaptive_avg_pool2d(x, output_size):
    op = "adaptive_avg_pool2d"
    check_tensor(x, "input", op, ndim=4)
    OH, OW = pair(output_size, "output_size", op)
    N, C, H, W = x.shape
    if H < 1 or W < 1:
        raise ValueError(f"{op}: input has an empty spatial size {(H, W)}")
    xp = x.xp
    rows, cols = _bins(H, OH), _bins(W, OW)
    if H % OH == 0 and W % OW == 0:  # equal, non-overlapping bins: one reshape and a mean
        y = x.data.reshape(N, C, OH, H // OH, OW, W // OW).mean(axis=(3, 5))  # (N, C, OH, bh, OW, bw) -> (N, C, OH, OW)
    else:
        y = xp.empty((N, C, OH, OW), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                y[:, :, i, j] = x.data[:, :, r0:r1, c0:c1].mean(axis=(2, 3))

    def backward(g):
        dx = xp.zeros(x.shape, dtype=g.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                dx[:, :, r0:r1, c0:c1] += (g[:, :, i, j] / ((r1 - r0) * (c1 - c0)))[:, :, None, None]
        return (dx,)
    return Tensor.from_op(y, (x,), backward, "adaptive_avg_pool2d")
