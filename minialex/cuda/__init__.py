"""minialex's own CUDA kernels: kernels/*.cu, their launch configurations and the CuPy calls.

- :mod:`minialex.cuda.launch`: grids, blocks and typed argument tuples, pure Python (no CuPy), so
  the CPU emulation tests run the very launches the GPU path makes.
- :mod:`minialex.cuda.kernels`: the CuPy path (``cupy.RawModule``), imported only when used.
- :mod:`minialex.cuda.sources`: where the .cu files are (package data or the source checkout).

Importing this package never imports CuPy.
"""
import os

import numpy as np

# Set MINIALEX_CUDA_KERNELS=0 to run the GPU through the generic CuPy code of the ops instead
# (the same array code as the CPU path): useful to compare our kernels with CuPy's own.
USE_KERNELS = os.environ.get("MINIALEX_CUDA_KERNELS", "1") != "0"


def use_cuda_kernels(x):
    """Whether an op on tensor ``x`` runs our CUDA kernels: float32 data on the GPU, kernels enabled."""
    return USE_KERNELS and x.device == "cuda" and x.dtype == np.float32
