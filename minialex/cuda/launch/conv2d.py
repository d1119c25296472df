"""Launches of kernels/conv2d.cu: the implicit-GEMM convolutions (versions 2, 3), im2col and col2im (version 1)."""
from typing import NamedTuple

import numpy as np

from ...shapes import ceil_div, conv_output_size, pair
from .common import MAX_GRID_YZ, TARGET_BLOCKS, THREADS, _check, _grid_1d, _i32, _launch

# Implicit-GEMM tiles of kernels/conv2d.cu (BM, BN, BK, threads): must match TileV2 / TileV3 there.
CONV_TILES = {2: (64, 64, 16, 256), 3: (128, 128, 8, 256)}
CONV_VERSIONS = (1, 2, 3)


class ConvGeometry(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    O: int
    kH: int
    kW: int
    sH: int
    sW: int
    pH: int
    pW: int
    OH: int
    OW: int
    groups: int

    @property
    def Cg(self):  # input channels per group
        return self.C // self.groups

    @property
    def Og(self):  # output channels per group
        return self.O // self.groups

    @property
    def K(self):   # reduction length of the forward GEMM: Cg * kH * kW
        return self.Cg * self.kH * self.kW

    @property
    def P(self):   # output pixels per image
        return self.OH * self.OW

    def args(self):
        """The 14 trailing int32 arguments of every implicit-GEMM conv kernel (CONV_GEOM_PARAMS)."""
        return tuple(_i32(v, f) for v, f in zip(self, self._fields))


def conv_geometry(x_shape, w_shape, stride=1, padding=0, groups=1):
    """Check a convolution's shapes and return its :class:`ConvGeometry`.

    x (N, C, H, W), w (O, C/groups, kH, kW); OH = (H + 2 pH - kH) // sH + 1 (same for W).
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"conv2d expects x (N, C, H, W) and w (O, C/groups, kH, kW), "
                         f"got {tuple(x_shape)} and {tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    O, Cg, kH, kW = (int(v) for v in w_shape)
    (sH, sW), (pH, pW) = pair(stride, "stride"), pair(padding, "padding", minimum=0)
    groups = int(groups)
    if groups < 1 or C % groups or O % groups:
        raise ValueError(f"groups={groups} must divide C={C} and O={O}")
    if Cg != C // groups:
        raise ValueError(f"w has {Cg} input channels, expected C/groups = {C // groups}")
    if min(kH, kW) < 1:
        raise ValueError(f"kernel {kH}x{kW} must be at least 1x1")
    OH, OW = conv_output_size(H, kH, sH, pH), conv_output_size(W, kW, sW, pW)
    if OH < 1 or OW < 1:
        raise ValueError(f"kernel {kH}x{kW} larger than the padded input {H + 2*pH}x{W + 2*pW}")
    g = ConvGeometry(N, C, H, W, O, kH, kW, sH, sW, pH, pW, OH, OW, groups)
    for what, v in (("x.size", N * C * H * W), ("y.size", N * O * OH * OW),
                    ("w.size", O * g.K)):
        _i32(v, what)  # the implicit-GEMM kernels index with 32-bit ints
    return g


def _conv_tile(version):
    if version not in CONV_TILES:
        raise ValueError(f"implicit-GEMM conv versions are {sorted(CONV_TILES)}, got {version}")
    return CONV_TILES[version]


def default_conv_version(g):
    """Provisional choice until the GPU benchmark decides: the big tile when M fills it."""
    return 3 if g.Og > 64 else 2


def conv2d_forward(x, w, b, y, g, version=3):
    """y = conv(x, w) + b with conv2d_fwd_v{2,3}. ``b`` may be None. Grid (n tiles, m tiles, groups)."""
    BM, BN, _, threads = _conv_tile(version)
    _check(x, "x", shape=(g.N, g.C, g.H, g.W))
    _check(w, "w", shape=(g.O, g.Cg, g.kH, g.kW))
    _check(y, "y", shape=(g.N, g.O, g.OH, g.OW))
    if b is not None:
        _check(b, "b", shape=(g.O,))
    grid = (ceil_div(g.N * g.P, BN), ceil_div(g.Og, BM), g.groups)
    args = (x, w, b if b is not None else w, y, np.int32(b is not None)) + g.args()
    return _launch("conv2d.cu", f"conv2d_fwd_v{version}", grid, threads, args)


def conv2d_backward_data(dy, w, dx, g, version=3):
    """dx = conv_transpose(dy, w) with conv2d_bwd_data_v{2,3}: a gather, every dx element written once."""
    BM, BN, _, threads = _conv_tile(version)
    _check(dy, "dy", shape=(g.N, g.O, g.OH, g.OW))
    _check(w, "w", shape=(g.O, g.Cg, g.kH, g.kW))
    _check(dx, "dx", shape=(g.N, g.C, g.H, g.W))
    grid = (ceil_div(g.N * g.H * g.W, BN), ceil_div(g.Cg, BM), g.groups)
    return _launch("conv2d.cu", f"conv2d_bwd_data_v{version}", grid, threads, (dy, w, dx) + g.args())


def conv2d_weight_splits(g, version=3, target_blocks=TARGET_BLOCKS, min_per_split=1024):
    """Split-K plan of the weight gradient: (splits, r_per_split).

    The reduction runs over R = N*OH*OW; with few (m, n) tiles it is cut into ``splits`` chunks of
    ``r_per_split`` (a multiple of the K tile), so that about ``target_blocks`` blocks run.
    """
    BM, BN, BK, _ = _conv_tile(version)
    R = g.N * g.P
    tiles = ceil_div(g.Og, BM) * ceil_div(g.K, BN) * g.groups
    splits = max(1, min(ceil_div(target_blocks, tiles), R // min_per_split,
                        MAX_GRID_YZ // g.groups))
    r_per_split = ceil_div(ceil_div(max(R, 1), splits), BK) * BK
    splits = max(1, ceil_div(R, r_per_split))  # no empty split
    return splits, r_per_split


def conv2d_backward_weight(x, dy, out, g, version=3, splits=1, r_per_split=None):
    """Weight gradient with conv2d_bwd_weight_v{2,3}.

    ``out`` is dw (O, Cg, kH, kW) when ``splits`` == 1, else a workspace (splits, O, Cg*kH*kW)
    whose slices :func:`sum_partials` adds into dw. Grid (n tiles, m tiles, groups * splits).
    """
    BM, BN, BK, threads = _conv_tile(version)
    _check(x, "x", shape=(g.N, g.C, g.H, g.W))
    _check(dy, "dy", shape=(g.N, g.O, g.OH, g.OW))
    R = g.N * g.P
    if r_per_split is None:
        r_per_split = ceil_div(max(R, 1), splits * BK) * BK
    if splits < 1 or r_per_split % BK or splits * r_per_split < R:
        raise ValueError(f"splits={splits} x r_per_split={r_per_split} must cover N*OH*OW={R} "
                         f"in multiples of {BK}")
    if splits == 1:
        _check(out, "dw", shape=(g.O, g.Cg, g.kH, g.kW))
    else:
        _check(out, "workspace", shape=(splits, g.O, g.K))
        _i32(splits * g.O * g.K, "workspace size")
    grid = (ceil_div(g.K, BN), ceil_div(g.Og, BM), g.groups * splits)
    args = (x, dy, out, _i32(splits, "splits"), _i32(r_per_split, "r_per_split")) + g.args()
    return _launch("conv2d.cu", f"conv2d_bwd_weight_v{version}", grid, threads, args)


def im2col(x, cols, g):
    """cols (n, C*kH*kW, OH*OW) of the images x (n, C, H, W) (a chunk of the batch): im2col_v1."""
    n = _check(x, "x", ndim=4).shape[0]
    _check(x, "x", shape=(n, g.C, g.H, g.W))
    _check(cols, "cols", shape=(n, g.C * g.kH * g.kW, g.P))
    args = (x, cols, _i32(n, "n_images"), *_geom_v1(g))
    return _launch("conv2d.cu", "im2col_v1", _grid_1d(n * g.C * g.P), THREADS, args)


def col2im(cols, dx, g):
    """dx (n, C, H, W) = the sum of cols (n, C*kH*kW, OH*OW) over overlapping windows: col2im_v1."""
    n = _check(dx, "dx", ndim=4).shape[0]
    _check(cols, "cols", shape=(n, g.C * g.kH * g.kW, g.P))
    _check(dx, "dx", shape=(n, g.C, g.H, g.W))
    args = (cols, dx, _i32(n, "n_images"), *_geom_v1(g))
    return _launch("conv2d.cu", "col2im_v1", _grid_1d(n * g.C * g.H * g.W), THREADS, args)


def _geom_v1(g):
    return tuple(_i32(v, "geometry") for v in (g.C, g.H, g.W, g.kH, g.kW, g.sH, g.sW, g.pH,
                                               g.pW, g.OH, g.OW))
