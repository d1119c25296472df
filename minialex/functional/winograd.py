"""Winograd's minimal filtering F(2x2, 3x3): a 3x3, stride-1 convolution with 2.25x fewer multiplications.

Source: A. Lavin and S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016
(arXiv:1509.09308), Sec. 4 and 5; the matrices below are theirs for F(2, 3).

In 1-D, two outputs of a 3-tap filter g over four inputs d cost 4 multiplications instead of 6:
    y = A^T [ (G g) * (B^T d) ]                      (* is elementwise)
    B^T = [[1, 0,-1, 0],    G = [[1,   0,   0  ],    A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],         [1/2, 1/2, 1/2],           [0, 1,-1,-1]]
           [0,-1, 1, 0],         [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]         [0,   0,   1  ]]
Nested, a 2x2 output tile comes from a 4x4 input tile d and the 3x3 filter g in 16 multiplications (not 36):
    Y = A^T [ (G g G^T) * (B^T d B) ] A
Summed over the input channels c, the 16 elementwise products become 16 matrix products, one per
position e = (a, b) of the 4x4 transformed tile:
    M[e] (P, O) = V[e] (P, C) @ U[e] (C, O),    U[e] = (G g G^T)[a, b],  V[e] = (B^T d B)[a, b]
P counts the tiles: TH x TW per image, TH = ceil(OH / 2), TW = ceil(OW / 2); input tiles are 4x4, two
apart, so neighbours overlap by two pixels. A convolution is thus: transform the filters (U), transform
the input tiles (V), 16 matrix products, transform every tile back (A^T . A). The products hold
16 * C * O multiply-adds per tile of 4 outputs, against 9 * C * O * 4 for im2col: 2.25x fewer.

Layout: tiles are ordered (tile row, tile column, image) and channels are the last axis, so each step of
a transform is a sum of long contiguous vectors (with NCHW and 13x13 images every vector would be 7
long, and NumPy's per-call cost would dominate). Only the entry and the exit transpose NCHW.

Backward:
    weights:  dU[e] = V[e]^T @ dM[e],  dM = A dY A^T per tile (the adjoint of the output transform),
              dW = G^T dU G             (the adjoint of the filter transform); V is kept from the forward.
    data:     not here. For stride 1 the data gradient is itself a stride-1 convolution (of the output
              gradient, with the filters flipped and transposed), so conv2d.py calls this file again.

Float32 rounding: the transforms add and subtract, so results differ from im2col's in the last bits
(tests/test_conv_algorithms.py bounds the difference on AlexNet's conv4); the plain reference is
``minialex.reference.conv2d``. A training run is chaotic enough that these bits change its trajectory:
the same seed ends with other weights than with ``F.conv_algorithm("im2col")``, which reproduces
im2col-only runs bit for bit (the seeds' accuracies with both are in benchmarks/RESULTS.md).
"""
from .. import backend
from ..shapes import ceil_div

# The matrices, for the docstring's formulas and the tests; the code below spells each product out.
# G is the paper's name for the filter transform (conv2d.py's G, the number of groups, is ``groups`` here).
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))


def applies(kernel_size, stride):
    """Whether F(2x2, 3x3) computes this convolution: a 3x3 kernel at stride 1 (any padding, groups)."""
    return tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1)


def tile_counts(OH, OW):
    """Tiles of 2x2 outputs that cover an OH x OW output (the last row/column may overhang)."""
    return ceil_div(OH, 2), ceil_div(OW, 2)


# ----------------------------------------------------------------------------- the three transforms
def _filter_rows(g0, g1, g2):
    """G @ [g0; g1; g2]: four rows from three."""
    half = 0.5 * (g0 + g2)
    return g0, half + 0.5 * g1, half - 0.5 * g1, g2


def _filter_rows_adjoint(u0, u1, u2, u3):
    """G^T @ [u0; u1; u2; u3]: three rows from four."""
    return u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3


def _data_rows(d0, d1, d2, d3, out):
    """out[0..3] = B^T @ [d0; d1; d2; d3]."""
    xp = backend.xp_of(d0)
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])


def _output_rows(m0, m1, m2, m3):
    """A^T @ [m0; m1; m2; m3]: two rows from four."""
    return m0 + m1 + m2, m1 - m2 - m3


def _output_rows_adjoint(y0, y1):
    """A @ [y0; y1]: four rows from two."""
    return y0, y0 + y1, y0 - y1, -y1


def transform_filters(w, groups):
    """w (O, C/G, 3, 3) -> U (16, G, C/G, O/G):  U[4a + b] = (G w G^T)[a, b], per group a (C/G, O/G) matrix."""
    xp = backend.xp_of(w)
    O, Cg = w.shape[:2]
    Og = O // groups
    w = w.reshape(groups, Og, Cg, 3, 3).transpose(3, 4, 0, 2, 1)   # (3, 3, G, C/G, O/G): taps first
    U = xp.empty((4, 4, groups, Cg, Og), dtype=w.dtype)
    rows = _filter_rows(w[0], w[1], w[2])                          # 4 x (3, G, C/G, O/G): G w
    for a in range(4):
        for b, u in enumerate(_filter_rows(rows[a][0], rows[a][1], rows[a][2])):  # (G w) G^T
            U[a, b] = u
    return U.reshape(16, groups, Cg, Og)


def transform_filter_grads(dU):
    """The adjoint of ``transform_filters``: dU (16, G, C/G, O/G) -> dW (O, C/G, 3, 3) = G^T dU G."""
    _, groups, Cg, Og = dU.shape
    dU = dU.reshape(4, 4, groups, Cg, Og)
    dW = backend.xp_of(dU).empty((3, 3, groups, Cg, Og), dtype=dU.dtype)
    cols = [_filter_rows_adjoint(dU[a, 0], dU[a, 1], dU[a, 2], dU[a, 3]) for a in range(4)]  # (G^T dU)^T: 4 x 3
    for j in range(3):
        for i, dw in enumerate(_filter_rows_adjoint(cols[0][j], cols[1][j], cols[2][j], cols[3][j])):
            dW[i, j] = dw
    return dW.transpose(2, 4, 3, 0, 1).reshape(groups * Og, Cg, 3, 3)      # (O, C/G, 3, 3)


def transform_inputs(x, padding, TH, TW):
    """x (N, C, H, W) -> V (16, P, C), P = TH * TW * N:  V[4a + b][tile] = (B^T d B)[a, b] for the tile's
    4x4 window d of the zero-padded input (rows 2*th .. 2*th + 3, columns 2*tw .. 2*tw + 3)."""
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    pH, pW = padding
    xpad = xp.zeros((2 * TH + 2, 2 * TW + 2, N, C), dtype=x.dtype)   # (rows, columns, N, C); zeros past
    xpad[pH:pH + H, pW:pW + W] = x.transpose(2, 3, 0, 1)              # the padding too, for overhanging tiles
    rows = xp.empty((4, TH, 2 * TW + 2, N, C), dtype=x.dtype)        # B^T d, for every tile row at once
    _data_rows(*(xpad[a:a + 2 * TH:2] for a in range(4)), out=rows)   # xpad[a::2]: row a of each tile
    V = xp.empty((4, 4, TH, TW, N, C), dtype=x.dtype)
    for a in range(4):                                                # (B^T d) B: the same on columns
        _data_rows(*(rows[a][:, b:b + 2 * TW:2] for b in range(4)), out=V[a])
    return V.reshape(16, TH * TW * N, C)


def transform_outputs(M, N, OH, OW, TH, TW):
    """M (16, G, P, O/G) -> y (N, O, OH, OW):  each tile's 2x2 outputs A^T M A, placed two apart."""
    xp = backend.xp_of(M)
    _, groups, _, Og = M.shape
    M = M.reshape(4, 4, groups, TH, TW, N, Og)
    y = xp.empty((N, groups, Og, OH, OW), dtype=M.dtype)
    y_tiles = y.transpose(3, 4, 0, 1, 2)                              # (OH, OW, N, G, O/G) view
    for r, S in enumerate(_output_rows(M[0], M[1], M[2], M[3])):      # A^T M: (4, G, TH, TW, N, O/G) each
        for s, Y in enumerate(_output_rows(S[0], S[1], S[2], S[3])):  # (A^T M) A: (G, TH, TW, N, O/G)
            out = y_tiles[r::2, s::2]                                 # output rows r, r+2, ...: <= TH of them
            out[...] = Y[:, :out.shape[0], :out.shape[1]].transpose(1, 2, 3, 0, 4)
    return y.reshape(N, groups * Og, OH, OW)


def transform_output_grads(gy, groups, TH, TW):
    """The adjoint of ``transform_outputs``: gy (N, O, OH, OW) -> dM (16, G, P, O/G) = A dY A^T per tile."""
    xp = backend.xp_of(gy)
    N, O, OH, OW = gy.shape
    Og = O // groups
    gpad = xp.zeros((groups, 2 * TH, 2 * TW, N, Og), dtype=gy.dtype)  # overhanging outputs get gradient 0
    gpad[:, :OH, :OW] = gy.reshape(N, groups, Og, OH, OW).transpose(1, 3, 4, 0, 2)
    rows = _output_rows_adjoint(gpad[:, 0::2], gpad[:, 1::2])         # 4 x (G, TH, 2TW, N, O/G)
    dM = xp.empty((4, 4, groups, TH, TW, N, Og), dtype=gy.dtype)
    for a in range(4):
        for b, m in enumerate(_output_rows_adjoint(rows[a][:, :, 0::2], rows[a][:, :, 1::2])):
            dM[a, b] = m
    return dM.reshape(16, groups, TH * TW * N, Og)


# ----------------------------------------------------------------------------- the convolution
def conv2d(x, w, padding, groups):
    """x (N, C, H, W), w (O, C/G, 3, 3), stride 1 -> (y (N, O, OH, OW), V): V (16, P, C) is what
    ``conv2d_weight_grad`` needs."""
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    O, Cg = w.shape[:2]
    Og = O // groups
    OH, OW = H + 2 * padding[0] - 2, W + 2 * padding[1] - 2
    TH, TW = tile_counts(OH, OW)
    U = transform_filters(w, groups)                                  # (16, G, C/G, O/G)
    V = transform_inputs(x, padding, TH, TW)                          # (16, P, C)
    M = xp.empty((16, groups, V.shape[1], Og), dtype=x.dtype)         # (16, G, P, O/G)
    for g in range(groups):                                           # 16 products (P, C/G) @ (C/G, O/G)
        xp.matmul(V[:, :, g * Cg:(g + 1) * Cg], U[:, g], out=M[:, g])
    return transform_outputs(M, N, OH, OW, TH, TW), V


def conv2d_weight_grad(gy, V, groups):
    """gy (N, O, OH, OW), V from ``conv2d`` -> dW (O, C/G, 3, 3)."""
    xp = backend.xp_of(gy)
    TH, TW = tile_counts(*gy.shape[2:])
    dM = transform_output_grads(gy, groups, TH, TW)                   # (16, G, P, O/G)
    Cg = V.shape[2] // groups
    dU = xp.empty((16, groups, Cg, dM.shape[3]), dtype=gy.dtype)      # (16, G, C/G, O/G)
    for g in range(groups):                                           # 16 products (C/G, P) @ (P, O/G)
        xp.matmul(V[:, :, g * Cg:(g + 1) * Cg].transpose(0, 2, 1), dM[:, g], out=dU[:, g])
    return transform_filter_grads(dU)
