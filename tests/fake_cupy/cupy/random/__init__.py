"""``cupy.random``: a generator whose stream differs from NumPy's, as the real one's does.

CuPy's ``default_rng`` is built on cuRAND's XORWOW, not PCG64, so the same seed gives other numbers
than ``numpy.random.default_rng``. Here the bits come from NumPy's Philox with the seed mixed, which
is just as different; code that assumes equal CPU and GPU streams fails the same way.
"""
import numpy as np

_MIX = 0x9E3779B97F4A7C15


def _generator(seed):
    return np.random.Generator(np.random.Philox(key=(int(seed) ^ _MIX) & (2 ** 64 - 1)))


class Generator:
    def __init__(self, bit_generator_seed=None):
        self._g = _generator(0 if bit_generator_seed is None else bit_generator_seed)

    def _out(self, values, dtype=None):
        from .. import ndarray
        values = np.asarray(values)
        return ndarray._of(values if dtype is None else values.astype(dtype, copy=False))

    def random(self, size=None, dtype=np.float64, out=None):
        return self._out(self._g.random(size, dtype=np.dtype(dtype).type))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return self._out(self._g.standard_normal(size, dtype=np.dtype(dtype).type))

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._out(self._g.normal(loc, scale, size))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return self._out(self._g.uniform(low, high, size), dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._out(self._g.integers(low, high, size, dtype=dtype, endpoint=endpoint))


def default_rng(seed=None):
    return Generator(seed)


_global = Generator(0)


def seed(value=None):
    global _global
    _global = Generator(0 if value is None else value)


def random(size=None, dtype=np.float64):
    return _global.random(size, dtype)


def standard_normal(size=None, dtype=np.float64):
    return _global.standard_normal(size, dtype)


def normal(loc=0.0, scale=1.0, size=None, dtype=np.float64):
    return _global._out(_global._g.normal(loc, scale, size), dtype)


def uniform(low=0.0, high=1.0, size=None, dtype=np.float64):
    return _global.uniform(low, high, size, dtype)
