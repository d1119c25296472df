"""Plain NumPy float64 references for the CUDA kernels (oracles of tests/test_kernels_emulated.py).

Written straight from the formulas, with explicit loops over kernel offsets, windows and
channels, independent of the rest of minialex, so that a bug shared by the kernels and the
engine's own NumPy ops cannot hide. Everything is computed in float64.
"""
import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ---- convolution ----------------------------------------------------------------------------------
def conv2d_forward(x, w, b=None, stride=1, padding=0, groups=1):
    """y[n, o, oh, ow] = b[o] + sum_{c,i,j} w[o, c, i, j] x[n, g*Cg + c, oh*sH - pH + i, ow*sW - pW + j]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sH, sW), (pH, pW) = _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    O, Cg, kH, kW = w.shape
    Og = O // groups
    OH, OW = (H + 2 * pH - kH) // sH + 1, (W + 2 * pW - kW) // sW + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    y = np.zeros((N, O, OH, OW))
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]            # (N, Cg, Hp, Wp)
        wg = w[g * Og:(g + 1) * Og]                # (Og, Cg, kH, kW)
        for i in range(kH):
            for j in range(kW):
                patch = xg[:, :, i:i + sH * OH:sH, j:j + sW * OW:sW]  # (N, Cg, OH, OW)
                y[:, g * Og:(g + 1) * Og] += np.einsum("oc,nchw->nohw", wg[:, :, i, j], patch)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, groups=1):
    """dx = the adjoint of conv2d_forward in x (scatter each kernel offset back, then crop)."""
    dy, w = np.asarray(dy, np.float64), np.asarray(w, np.float64)
    (sH, sW), (pH, pW) = _pair(stride), _pair(padding)
    N, C, H, W = x_shape
    O, Cg, kH, kW = w.shape
    Og = O // groups
    OH, OW = dy.shape[2:]
    dxp = np.zeros((N, C, H + 2 * pH, W + 2 * pW))
    for g in range(groups):
        dyg = dy[:, g * Og:(g + 1) * Og]
        wg = w[g * Og:(g + 1) * Og]
        for i in range(kH):
            for j in range(kW):
                dxp[:, g * Cg:(g + 1) * Cg, i:i + sH * OH:sH, j:j + sW * OW:sW] += \
                    np.einsum("oc,nohw->nchw", wg[:, :, i, j], dyg)
    return dxp[:, :, pH:pH + H, pW:pW + W]


def conv2d_backward_weight(x, dy, w_shape, stride=1, padding=0, groups=1):
    """dw[o, c, i, j] = sum_{n, oh, ow} dy[n, o, oh, ow] x[n, g*Cg + c, oh*sH - pH + i, ow*sW - pW + j]."""
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    (sH, sW), (pH, pW) = _pair(stride), _pair(padding)
    O, Cg, kH, kW = w_shape
    Og = O // groups
    OH, OW = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    dw = np.zeros(w_shape)
    for g in range(groups):
        for i in range(kH):
            for j in range(kW):
                patch = xp[:, g * Cg:(g + 1) * Cg, i:i + sH * OH:sH, j:j + sW * OW:sW]
                dw[g * Og:(g + 1) * Og, :, i, j] = np.einsum("nohw,nchw->oc", dy[:, g * Og:(g + 1) * Og], patch)
    return dw


def im2col(x, kernel, stride=1, padding=0):
    """cols (N, C*kH*kW, OH*OW), row c*kH*kW + i*kW + j, column oh*OW + ow."""
    x = np.asarray(x, np.float64)
    (kH, kW), (sH, sW), (pH, pW) = _pair(kernel), _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pH - kH) // sH + 1, (W + 2 * pW - kW) // sW + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    cols = np.zeros((N, C, kH, kW, OH, OW))
    for i in range(kH):
        for j in range(kW):
            cols[:, :, i, j] = xp[:, :, i:i + sH * OH:sH, j:j + sW * OW:sW]
    return cols.reshape(N, C * kH * kW, OH * OW)


def col2im(cols, x_shape, kernel, stride=1, padding=0):
    """The adjoint of im2col: each column entry is added back to the pixel it came from."""
    cols = np.asarray(cols, np.float64)
    (kH, kW), (sH, sW), (pH, pW) = _pair(kernel), _pair(stride), _pair(padding)
    N, C, H, W = x_shape
    OH, OW = (H + 2 * pH - kH) // sH + 1, (W + 2 * pW - kW) // sW + 1
    c6 = cols.reshape(N, C, kH, kW, OH, OW)
    xp = np.zeros((N, C, H + 2 * pH, W + 2 * pW))
    for i in range(kH):
        for j in range(kW):
            xp[:, :, i:i + sH * OH:sH, j:j + sW * OW:sW] += c6[:, :, i, j]
    return xp[:, :, pH:pH + H, pW:pW + W]


# ---- local response normalisation (PyTorch's convention) ----------------------------------------
def _lrn_window(c, C, size):
    """Channels of the window of channel c: [c - size//2, c + (size-1)//2] clipped to [0, C)."""
    return range(max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1))


def lrn_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """(y, s): s_c = k + alpha/size * sum_{c' in window(c)} x_c'^2, y_c = x_c s_c^-beta."""
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    s = np.empty_like(x)
    for c in range(C):
        win = list(_lrn_window(c, C, size))
        s[:, c] = k + alpha / size * (x[:, win] ** 2).sum(axis=1)
    return x * s ** -beta, s


def lrn_backward(x, gy, size, alpha=1e-4, beta=0.75, k=1.0):
    """dx_c = g_c s_c^-beta - (2 alpha beta / size) x_c sum_{c' : c in window(c')} g_c' y_c' / s_c'."""
    x, gy = np.asarray(x, np.float64), np.asarray(gy, np.float64)
    y, s = lrn_forward(x, size, alpha, beta, k)
    C = x.shape[1]
    t = gy * y / s
    dx = gy * s ** -beta
    for c in range(C):
        users = [cp for cp in range(C) if c in _lrn_window(cp, C, size)]
        dx[:, c] -= 2 * alpha * beta / size * x[:, c] * t[:, users].sum(axis=1)
    return dx


# ---- max-pooling ----------------------------------------------------------------------------------
def pool_out(n, k, s, p, ceil_mode):
    span = n + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool2d_forward(x, kernel, stride, padding=0, ceil_mode=False):
    """(y, argmax): first maximum in row-major window order; argmax = h*W + w; padding is -inf."""
    x = np.asarray(x, np.float64)
    (kH, kW), (sH, sW), (pH, pW) = _pair(kernel), _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    OH, OW = pool_out(H, kH, sH, pH, ceil_mode), pool_out(W, kW, sW, pW, ceil_mode)
    y = np.full((N, C, OH, OW), -np.inf)
    arg = np.full((N, C, OH, OW), -1, np.int64)
    for oh in range(OH):
        for ow in range(OW):
            for i in range(kH):
                for j in range(kW):
                    h, w = oh * sH - pH + i, ow * sW - pW + j
                    if 0 <= h < H and 0 <= w < W:
                        v = x[:, :, h, w]
                        better = (v > y[:, :, oh, ow]) | (arg[:, :, oh, ow] < 0)
                        y[:, :, oh, ow] = np.where(better, v, y[:, :, oh, ow])
                        arg[:, :, oh, ow] = np.where(better, h * W + w, arg[:, :, oh, ow])
    return y, arg


def max_pool2d_backward(gy, argmax, x_shape):
    """gx: each output gradient added to its argmax."""
    N, C, H, W = x_shape
    gx = np.zeros((N * C, H * W))
    flat_g = np.asarray(gy, np.float64).reshape(N * C, -1)
    flat_a = np.asarray(argmax).reshape(N * C, -1)
    for r in range(N * C):
        np.add.at(gx[r], flat_a[r], flat_g[r])
    return gx.reshape(x_shape)


# ---- elementwise ----------------------------------------------------------------------------------
def bias_act(x, b, relu):
    y = np.asarray(x, np.float64).copy()
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, -1) + (1,) * (y.ndim - 2))
    return np.maximum(y, 0) if relu else y


def bias_act_backward(gy, y, relu):
    """(gx, db): gx = gy * [y > 0] (or gy), db = sum of gx over every axis but 1."""
    gx = np.asarray(gy, np.float64) * ((np.asarray(y) > 0) if relu else 1.0)
    return gx, gx.sum(axis=tuple(a for a in range(gx.ndim) if a != 1))


def softmax_xent(logits, labels):
    """(loss per row, probs), computed in float64 with the max subtracted."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    loss = lse - z[np.arange(len(labels)), labels]
    return loss, np.exp(z - lse[:, None])


def softmax_xent_backward(probs, labels, grad_loss):
    g = np.asarray(probs, np.float64).copy()
    g[np.arange(len(labels)), labels] -= 1.0
    return g * np.asarray(grad_loss, np.float64)[:, None]


def sgd_momentum(w, g, v, lr, momentum, weight_decay):
    """The paper's rule: v = m v - wd lr w - lr g; w = w + v. Returns (w, v)."""
    w, g, v = (np.asarray(a, np.float64) for a in (w, g, v))
    v = momentum * v - weight_decay * lr * w - lr * g
    return w + v, v
