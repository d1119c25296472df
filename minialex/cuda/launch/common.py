"""What every launch shares: the Launch record, the argument checks and the 1-D grid (kernels/common.cuh)."""
from typing import NamedTuple

import numpy as np

from ...shapes import ceil_div

THREADS = 256          # threads of every 1-D kernel (MINIALEX_THREADS in kernels/common.cuh)
MAX_GRID_X = 2**31 - 1
MAX_GRID_YZ = 65535
DEFAULT_MAX_BLOCKS = 4096    # cap for grid-stride kernels (H100: 132 SMs x 8 blocks of 256 = 1056)
TARGET_BLOCKS = 264          # ~2 waves of blocks on a 132-SM H100: goal of the split-K heuristics


class Launch(NamedTuple):
    source: str        # file in kernels/, e.g. "lrn.cu"
    kernel: str        # its extern "C" name
    grid: tuple        # (x, y, z)
    block: tuple       # (x, y, z)
    shared_mem: int    # dynamic shared memory in bytes
    args: tuple        # arrays and typed scalars, in the kernel's parameter order


def _i32(value, what):
    value = int(value)
    if not -2**31 <= value < 2**31:
        raise ValueError(f"{what} = {value} does not fit a 32-bit int")
    return np.int32(value)


def _check(a, name, dtype=np.float32, shape=None, ndim=None):
    """Check that ``a`` is a C-contiguous array of ``dtype`` (and ``shape`` / ``ndim``)."""
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    if np.dtype(a.dtype) not in [np.dtype(d) for d in dtypes]:
        want = " or ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must be {want}, got {np.dtype(a.dtype).name}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (the kernels ignore strides)")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(a.shape)}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(a.shape)}")
    return a


def _launch(source, kernel, grid, threads, args):
    """A Launch, or None when the grid is empty (nothing to do)."""
    grid = tuple(int(v) for v in grid)
    if min(grid) <= 0:
        return None
    if grid[0] > MAX_GRID_X or grid[1] > MAX_GRID_YZ or grid[2] > MAX_GRID_YZ:
        raise ValueError(f"grid {grid} of {kernel} exceeds CUDA's limits")
    return Launch(source, kernel, grid, (threads, 1, 1), 0, tuple(args))


def _grid_1d(total, max_blocks=MAX_GRID_X):
    return (min(ceil_div(total, THREADS), max_blocks), 1, 1)
