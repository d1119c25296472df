"""How many threads NumPy's BLAS (the matrix products under conv2d and linear) may use.

Why it matters: on a machine whose cores are busy with other work, OpenBLAS threads that spin-wait for
each other can make one small matrix product take seconds instead of milliseconds. Measured on the
2-core development machine under load: a batch of 16 digits through the mini AlexNet took 0.1-5 s per
step with 2 BLAS threads, a steady 0.15 s with 1 (see benchmarks/RESULTS.md).

The environment variable OPENBLAS_NUM_THREADS works only before NumPy is imported; this module changes
it afterwards, with threadpoolctl when it is installed, else through OpenBLAS's own C function.
"""
import ctypes
import functools
import glob
import os
from contextlib import contextmanager

import numpy as np

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")


def _openblas_libraries():
    """Paths of the OpenBLAS shared libraries that NumPy's wheel ships (numpy.libs / numpy/.libs)."""
    root = os.path.dirname(np.__file__)
    patterns = [os.path.join(root, ".libs", "*openblas*"), os.path.join(root + ".libs", "*openblas*"),
                os.path.join(os.path.dirname(root), "numpy.libs", "*openblas*")]
    return sorted({p for pattern in patterns for p in glob.glob(pattern)})


@functools.lru_cache(maxsize=None)
def _openblas_function(verb):
    """OpenBLAS's ``<prefix><verb>_num_threads<suffix>`` C function from NumPy's wheel, or None."""
    for path in _openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                fn = getattr(lib, f"{prefix}{verb}_num_threads{suffix}", None)
                if fn is not None:
                    return fn
    return None


def get_blas_threads():
    """The number of threads OpenBLAS uses now, or None when it cannot be told."""
    fn = _openblas_function("get")
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    return int(fn())


def set_blas_threads(n):
    """Limit BLAS to ``n`` threads; returns True when it could, False when no known BLAS was found."""
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of threads must be >= 1, got {n}")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
        return True
    except ImportError:
        pass
    fn = _openblas_function("set")
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int]
    fn(n)
    return True


@contextmanager
def blas_threads(n):
    """``with blas_threads(1): ...``: BLAS limited to ``n`` threads inside, as before afterwards."""
    before = get_blas_threads()
    set_blas_threads(n)
    try:
        yield
    finally:
        if before is not None:
            set_blas_threads(before)
