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

CPU algorithm (whole-array passes, no loop over windows). x_pad is cut into sH*sW phase planes
    P[p, q][n, c, a, b] = x_pad[n, c, sH*a + p, sW*b + q]      each (N, C, Hq, Wq), -inf outside x,
so kernel offset k = i*kW + j sees, at every output (oh, ow) at once,
    v_k[n, c, oh, ow] = P[i % sH, j % sW][n, c, oh + i // sH, ow + j // sW],
a contiguous slice of the flattened plane, shifted by d_k = (i // sH) * Wq + j // sW (computed on
the planes' (Hq, Wq) grid; the outputs past (OH, OW) are dropped). The forward takes the running
maximum over k = 0 .. kH*kW-1 and records which offset last raised it strictly:
    m_k = v_k > max(v_0, ..., v_{k-1}),     argmax = max_k k * m_k     (N, C, Hq, Wq),
uint8 (int32 when kH*kW > 256): the first maximum, as a later equal value does not raise it. The
backward routes g plane by plane,
    dP[i % sH, j % sW] (shifted by d_k) += g * (argmax == k),
and interleaves the planes into dx.

Where this differs from PyTorch and from kernels/maxpool.cu (both send the gradient to the NaN, or
to the first real pixel): a NaN makes the output NaN (np.maximum), but as no comparison with NaN
holds, its gradient goes where the running maximum was when the first NaN came (to the NaN itself
only when it is at offset 0); a window that is all -inf and starts in the padding sends its gradient
to the padding, i.e. nowhere.

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
    if x.data.size == 0:                                # no samples or no channels: nothing to pool
        return Tensor.from_op(xp.empty((N, C, OH, OW), dtype=x.dtype), (x,),
                              lambda g: (xp.zeros(x.shape, dtype=g.dtype),), "max_pool2d")
    Hq = -(-max(pH + H, (OH - 1) * sH + kH) // sH)     # the planes hold x and all the windows
    Wq = -(-max(pW + W, (OW - 1) * sW + kW) // sW)

    def phase(p, q):
        """(the rows and columns of x in plane (p, q), the rows and columns they fill there)."""
        r, c = (p - pH) % sH, (q - pW) % sW             # x's first row and column in the plane
        a, b = (r + pH) // sH, (c + pW) // sW
        rows, cols = len(range(r, H, sH)), len(range(c, W, sW))
        return (slice(r, H, sH), slice(c, W, sW)), (slice(a, a + rows), slice(b, b + cols))
    phases = [(p, q) + phase(p, q) for p in range(sH) for q in range(sW)]
    K = kH * kW
    offsets = [(i % sH, j % sW, (i // sH) * Wq + j // sW)  # offset k = i*kW + j: its plane (p, q), shift d_k
               for i in range(kH) for j in range(kW)]
    shift = offsets[-1][2]                              # the largest d_k
    code = xp.uint8 if K <= 256 else xp.int32
    ks = xp.arange(K, dtype=code)[:, None]
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = xp.empty((N, C, Hq, Wq), dtype=code)

    def pool(s):                                        # s: a slice of the batch
        xs = x.data[s]
        n = xs.shape[0]
        planes = xp.full((sH, sW, n, C, Hq, Wq), -xp.inf, dtype=x.dtype)   # -inf where x does not reach
        for p, q, (xr, xc), (pr, pc) in phases:
            planes[p, q, :, :, pr, pc] = xs[:, :, xr, xc]
        flat = planes.reshape(sH, sW, -1)
        L = flat.shape[2] - shift                       # grid points that all offsets reach
        top = xp.empty(flat.shape[2], dtype=x.dtype)
        raised = xp.empty((K, L), dtype=bool)           # m_k
        raised[0] = False
        best = flat[0, 0]
        for k in range(1, K):
            p, q, d = offsets[k]
            v = flat[p, q, d:d + L]
            xp.greater(v, best[:L], out=raised[k])      # strictly: a later equal value does not win
            xp.maximum(best[:L], v, out=top[:L])
            best = top
        codes = raised.view(xp.uint8) if K <= 256 else raised.astype(code)
        xp.multiply(codes, ks, out=codes)               # k * m_k
        codes.max(axis=0, out=argmax[s].reshape(-1)[:L])
        y[s] = best.reshape(n, C, Hq, Wq)[:, :, :OH, :OW]
    for_batch(xp, N, pool, C * Hq * Wq)                 # C * Hq * Wq: a sample's share of each pass

    def backward(g):
        dx = xp.empty(x.shape, dtype=g.dtype)

        def route(s):                                   # s: a slice of the batch
            gs = g[s]
            n = gs.shape[0]
            gq = xp.empty((n, C, Hq, Wq), dtype=g.dtype)    # g on the planes' grid, 0 past it
            gq[:, :, :OH, :OW] = gs
            gq[:, :, OH:] = gq[:, :, :, OW:] = 0
            dplanes = xp.zeros((sH, sW, n * C * Hq * Wq), dtype=g.dtype)
            L = dplanes.shape[2] - shift
            gflat, idx = gq.reshape(-1)[:L], argmax[s].reshape(-1)[:L]
            hit, part = xp.empty(L, dtype=bool), xp.empty(L, dtype=g.dtype)
            for k, (p, q, d) in enumerate(offsets):
                xp.equal(idx, k, out=hit)
                xp.multiply(gflat, hit, out=part)
                dplanes[p, q, d:d + L] += part
            dplanes = dplanes.reshape(sH, sW, n, C, Hq, Wq)
            for p, q, (xr, xc), (pr, pc) in phases:
                dx[s, :, xr, xc] = dplanes[p, q, :, :, pr, pc]
        for_batch(xp, N, route, C * Hq * Wq)
        return (dx,)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")


def _max_pool2d_cuda(x, kernel_size, stride, padding, ceil_mode):
    """GPU path: max_pool2d forward/backward kernels of kernels/maxpool.cu."""
    from ..cuda import kernels as K
    y, argmax = K.max_pool2d_forward(x.data, kernel_size, stride, padding, ceil_mode)

    def backward(g):
        return (K.max_pool2d_backward(g, argmax, x.shape, kernel_size, stride, padding),)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")
