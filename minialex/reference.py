"""Plain, obviously-correct reference implementations: nested loops over NumPy arrays.

These are the oracles the fast ops in ``minialex.functional`` (and the CUDA kernels)
are tested against, and the teaching text for the notebooks: each line is the formula.
They are slow on purpose; use them on small inputs only.
"""
import math

import numpy as np


def conv2d(x, w, b=None, stride=1, padding=0, groups=1):
    """x (N, C, H, W), w (O, C/groups, kH, kW), b (O,) -> (N, O, OH, OW), by the definition:
    y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, g*C/G + c, s*oh + i, s*ow + j]."""
    s = (stride, stride) if np.isscalar(stride) else tuple(stride)
    p = (padding, padding) if np.isscalar(padding) else tuple(padding)
    N, C, H, W = x.shape
    O, Cg, kH, kW = w.shape
    xp = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=np.float64)
    xp[:, :, p[0]:p[0] + H, p[1]:p[1] + W] = x
    OH = (H + 2 * p[0] - kH) // s[0] + 1
    OW = (W + 2 * p[1] - kW) // s[1] + 1
    Og = O // groups
    y = np.zeros((N, O, OH, OW), dtype=np.float64)
    for n in range(N):
        for o in range(O):
            g = o // Og                      # the group this output channel belongs to
            for oh in range(OH):
                for ow in range(OW):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(Cg):
                        for i in range(kH):
                            for j in range(kW):
                                acc += w[o, c, i, j] * xp[n, g * Cg + c, s[0] * oh + i, s[1] * ow + j]
                    y[n, o, oh, ow] = acc
    return y


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """x (N, C, H, W) -> (y (N, C, OH, OW), argmax (N, C, OH, OW) as flat indices into H*W).
    Each window's maximum; padding is -inf; the first maximum in row-major scan order wins."""
    k = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    stride = k if stride is None else stride
    s = (stride, stride) if np.isscalar(stride) else tuple(stride)
    p = (padding, padding) if np.isscalar(padding) else tuple(padding)
    N, C, H, W = x.shape

    def out_size(size, kk, ss, pp):
        if ceil_mode:
            o = math.ceil((size + 2 * pp - kk) / ss) + 1
            return o - 1 if (o - 1) * ss >= size + pp else o
        return (size + 2 * pp - kk) // ss + 1

    OH, OW = out_size(H, k[0], s[0], p[0]), out_size(W, k[1], s[1], p[1])
    y = np.empty((N, C, OH, OW), dtype=np.float64)
    arg = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = -np.inf, -1
                    for i in range(k[0]):
                        for j in range(k[1]):
                            r, q = s[0] * oh + i - p[0], s[1] * ow + j - p[1]
                            if 0 <= r < H and 0 <= q < W and x[n, c, r, q] > best:
                                best, where = x[n, c, r, q], r * W + q
                    y[n, c, oh, ow], arg[n, c, oh, ow] = best, where
    return y, arg


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """x (N, C, ...) -> same shape; PyTorch's convention, straight from the formula:
    b_c = a_c / (k + alpha/size * sum_{c'=max(0, c - size//2)}^{min(C-1, c + (size-1)//2)} a_{c'}^2)^beta."""
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[1]
    y = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        total = np.zeros_like(x[:, c])
        for cc in range(lo, hi + 1):
            total += x[:, cc] ** 2
        y[:, c] = x[:, c] / (k + alpha / size * total) ** beta
    return y


def adaptive_avg_pool2d(x, output_size):
    """x (N, C, H, W) -> (N, C, OH, OW); cell (i, j) averages rows floor(i*H/OH) .. ceil((i+1)*H/OH)-1."""
    OH, OW = (output_size, output_size) if np.isscalar(output_size) else output_size
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), dtype=np.float64)
    for i in range(OH):
        for j in range(OW):
            r0, r1 = (i * H) // OH, math.ceil((i + 1) * H / OH)
            c0, c1 = (j * W) // OW, math.ceil((j + 1) * W / OW)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def cross_entropy(logits, target):
    """Mean over the batch of -log softmax(logits)[target], computed in float64 with a log-sum-exp."""
    z = np.asarray(logits, dtype=np.float64)
    total = 0.0
    for n in range(z.shape[0]):
        m = z[n].max()
        total += m + math.log(np.exp(z[n] - m).sum()) - z[n, target[n]]
    return total / z.shape[0]
