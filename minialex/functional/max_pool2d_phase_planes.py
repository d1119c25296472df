"""Max-pooling on stride-phase planes: the fast CPU algorithm behind ``F.pool_algorithm("phase_planes")``
(and "auto"). It computes what the plain version in ``max_pool2d.py`` computes, bit for bit (outputs,
gradients, the first-maximum tie rule; tests/test_pool_algorithms.py), with contiguous passes instead of
strided views, and the argmax kept by the forward as one small offset code per window.

The planes. x_pad is cut into sH*sW phase planes
    P[p, q][n, c, a, b] = x_pad[n, c, sH*a + p, sW*b + q]      each (N, C, Hq, Wq), -inf outside x,
so kernel offset k = i*kW + j sees, at every output (oh, ow) at once,
    v_k[n, c, oh, ow] = P[i % sH, j % sW][n, c, oh + i // sH, ow + j // sW],
a contiguous slice of the flattened plane, shifted by d_k = (i // sH) * Wq + j // sW (computed on
the planes' (Hq, Wq) grid; the outputs past (OH, OW) are dropped).

Forward: the running maximum over k = 0 .. kH*kW-1, recording which offsets raised it strictly:
    m_k = v_k > max(v_0, ..., v_{k-1}),     argmax = max_k k * m_k     (N, C, Hq, Wq),
uint8 (int32 when kH*kW > 256). The last offset that raised it is the first maximum, since a later
equal value does not raise it: the plain version's "argmax[v > y] = k".

Backward: g is routed plane by plane,
    dP[i % sH, j % sW] (shifted by d_k) += g * (argmax == k),
and the planes are interleaved back into dx.
"""
from ..parallel import for_batch
from ..shapes import ceil_div
from ..tensor import Tensor


def max_pool2d_phase_planes(x, kernel_size, stride, padding, output_size):
    """x (N, C, H, W) -> (N, C, OH, OW); the arguments are pairs, checked by ``max_pool2d``."""
    (kH, kW), (sH, sW), (pH, pW), (OH, OW) = kernel_size, stride, padding, output_size
    xp = x.xp
    N, C, H, W = x.shape
    if x.data.size == 0:                                # no samples or no channels: nothing to pool
        return Tensor.from_op(xp.empty((N, C, OH, OW), dtype=x.dtype), (x,),
                              lambda g: (xp.zeros(x.shape, dtype=g.dtype),), "max_pool2d")
    Hq = ceil_div(max(pH + H, (OH - 1) * sH + kH), sH)  # the planes hold x and all the windows
    Wq = ceil_div(max(pW + W, (OW - 1) * sW + kW), sW)

    def phase(p, q):
        """(the rows and columns of x in plane (p, q), the rows and columns they fill there)."""
        r, c = (p - pH) % sH, (q - pW) % sW             # x's first row and column in the plane
        a, b = (r + pH) // sH, (c + pW) // sW
        rows, cols = len(range(r, H, sH)), len(range(c, W, sW))
        return (slice(r, H, sH), slice(c, W, sW)), (slice(a, a + rows), slice(b, b + cols))
    phases = [(p, q) + phase(p, q) for p in range(sH) for q in range(sW)]
    n_offsets = kH * kW
    offsets = [(i % sH, j % sW, (i // sH) * Wq + j // sW)  # offset k = i*kW + j: its plane (p, q), shift d_k
               for i in range(kH) for j in range(kW)]
    max_shift = offsets[-1][2]                          # the largest d_k
    code = xp.uint8 if n_offsets <= 256 else xp.int32
    ks = xp.arange(n_offsets, dtype=code)[:, None]
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = xp.empty((N, C, Hq, Wq), dtype=code)

    def pool(s):                                        # s: a slice of the batch
        xs = x.data[s]
        n = xs.shape[0]
        planes = xp.full((sH, sW, n, C, Hq, Wq), -xp.inf, dtype=x.dtype)   # -inf where x does not reach
        for p, q, (xr, xc), (pr, pc) in phases:
            planes[p, q, :, :, pr, pc] = xs[:, :, xr, xc]
        flat = planes.reshape(sH, sW, -1)               # (sH, sW, n * C * Hq * Wq)
        reach = flat.shape[2] - max_shift               # grid points that every offset reaches
        running_max = xp.empty(flat.shape[2], dtype=x.dtype)
        raised_by = xp.empty((n_offsets, reach), dtype=bool)   # m_k
        raised_by[0] = False
        best = flat[0, 0]
        for k in range(1, n_offsets):
            p, q, d = offsets[k]
            v = flat[p, q, d:d + reach]
            xp.greater(v, best[:reach], out=raised_by[k])   # strictly: a later equal value does not win
            xp.maximum(best[:reach], v, out=running_max[:reach])
            best = running_max
        codes = raised_by.view(xp.uint8) if n_offsets <= 256 else raised_by.astype(code)
        xp.multiply(codes, ks, out=codes)               # k * m_k
        codes.max(axis=0, out=argmax[s].reshape(-1)[:reach])
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
            reach = dplanes.shape[2] - max_shift
            gflat, idx = gq.reshape(-1)[:reach], argmax[s].reshape(-1)[:reach]
            won, part = xp.empty(reach, dtype=bool), xp.empty(reach, dtype=g.dtype)
            for k, (p, q, d) in enumerate(offsets):
                xp.equal(idx, k, out=won)
                xp.multiply(gflat, won, out=part)
                dplanes[p, q, d:d + reach] += part
            dplanes = dplanes.reshape(sH, sW, n, C, Hq, Wq)
            for p, q, (xr, xc), (pr, pc) in phases:
                dx[s, :, xr, xc] = dplanes[p, q, :, :, pr, pc]
        for_batch(xp, N, route, C * Hq * Wq)
        return (dx,)
    return Tensor.from_op(y, (x,), backward, "max_pool2d")
