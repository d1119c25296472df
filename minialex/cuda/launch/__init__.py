"""Launch configurations of minialex's CUDA kernels, in pure Python (no CuPy here).

Each function takes the arrays of one kernel call (NumPy or CuPy: only ``.shape``,
``.dtype`` and ``.flags`` are read), checks them, and returns a :class:`Launch`: the kernel's file
and name, the grid, the block, the dynamic shared memory (always 0: the kernels use static shared
arrays) and the argument tuple in the kernel's parameter order, every scalar typed
(``np.int32``, ``np.int64``, ``np.float32``: CuPy would pass a Python float as ``double``).

The CuPy path (:mod:`minialex.cuda.kernels`) launches exactly these on a GPU, and the CPU emulation
tests (tests/test_kernels_emulated.py) run the same launches through kernels/emu/cuda_emu.h, so the
grid arithmetic and the argument lists are tested on machines without a GPU.

One module per kernel file, as kernels/ is split: :mod:`.common` (the :class:`Launch` record,
argument checks and 1-D grids, with kernels/common.cuh), :mod:`.conv2d`, :mod:`.lrn`, :mod:`.maxpool` and
:mod:`.elementwise` (one per .cu file). This package re-exports every public name, so callers write
``launch.conv2d_forward(...)`` and look names up here (tests patch ``launch.default_conv_version``).

A function returns ``None`` when there is nothing to launch (an empty grid): a CUDA grid of size 0
is an error, and CuPy would run one block anyway.
"""
from .common import DEFAULT_MAX_BLOCKS, MAX_GRID_X, MAX_GRID_YZ, TARGET_BLOCKS, THREADS, Launch
from .conv2d import (CONV_TILES, CONV_VERSIONS, ConvGeometry, col2im, conv2d_backward_data,
                     conv2d_backward_weight, conv2d_forward, conv2d_weight_splits, conv_geometry,
                     default_conv_version, im2col)
from .elementwise import (bias_act_backward, bias_act_forward, bias_grad_chunks, dropout_apply,
                          sgd_momentum, softmax_xent_backward, softmax_xent_forward, sum_partials)
from .lrn import lrn_backward, lrn_forward
from .maxpool import max_pool2d_backward, max_pool2d_forward, max_pool2d_output_shape

__all__ = [
    "DEFAULT_MAX_BLOCKS", "MAX_GRID_X", "MAX_GRID_YZ", "TARGET_BLOCKS", "THREADS", "Launch",
    "CONV_TILES", "CONV_VERSIONS", "ConvGeometry", "col2im", "conv2d_backward_data", "conv2d_backward_weight",
    "conv2d_forward", "conv2d_weight_splits", "conv_geometry", "default_conv_version", "im2col",
    "bias_act_backward", "bias_act_forward", "bias_grad_chunks", "dropout_apply", "sgd_momentum",
    "softmax_xent_backward", "softmax_xent_forward", "sum_partials",
    "lrn_backward", "lrn_forward",
    "max_pool2d_backward", "max_pool2d_forward", "max_pool2d_output_shape",
]
