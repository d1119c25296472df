"""A strict stand-in for CuPy, for running minialex's GPU code paths on a machine without a GPU.

The test suite puts ``tests/fake_cupy`` first on ``sys.path`` when the real CuPy cannot reach a GPU
(see tests/conftest.py and tests/fake_cupy/README.md), so ``import cupy`` finds this package.
"Strict" means it fails where CuPy fails, so a defect the real CuPy would raise on shows up here:

* :class:`ndarray` is a type of its own (a NumPy array inside, the "device memory"). It refuses
  implicit conversion to NumPy (``np.asarray(a)``, ``np.savez(f, a)`` raise TypeError, as CuPy's
  ``__array__`` does); mixing a NumPy array into an operation, or assigning one into a slice, raises
  TypeError. Data moves only through ``.get()``, ``cupy.asnumpy`` and ``cupy.asarray``/``array``.
* Reductions and scalar indexing return 0-d arrays, as CuPy's do, not NumPy scalars; ``float(a)``,
  ``int(a)``, ``a.item()`` and ``bool(a)`` (host synchronisations on a GPU) are counted in
  :data:`host_syncs`, so a test can check that a training step makes none it does not need.
* ``ndarray`` has only the attributes and methods that CuPy's has and minialex uses (the list is
  :data:`_METHODS`); anything else is an AttributeError, as a NumPy-only attribute
  (``flags.writeable``, ``.ctypes``) would be on a GPU.
* :class:`RawModule` compiles the real ``.cu`` text with g++ against kernels/emu/cuda_emu.h and runs
  its kernels on the CPU (see :mod:`cupy._emulated`), checking each argument against the kernel's C
  signature: arrays must be this module's arrays (not NumPy's), C-contiguous, of the pointee's
  dtype; scalars must have the exact C type (a Python float for a ``float`` parameter is refused:
  CuPy would pass it as a double).
* ``cupy.random`` draws from a different bit generator than NumPy's, as the real one does, so code
  that expects equal CPU and GPU random streams fails here too.

What it cannot catch is listed in tests/fake_cupy/README.md (timing, memory limits, races between
streams, NVRTC-only compile errors, kernels' behaviour on real hardware, ...).
"""
import numpy as _np

from . import _emulated, cuda, random  # noqa: F401  (submodules, as in CuPy)
from . import lib  # noqa: F401

__version__ = "0.0.0+minialex.fake"
IS_FAKE = True   # minialex's tests read this; the real CuPy has no such attribute

# dtypes are NumPy's, as in CuPy
from numpy import (bool_, float16, float32, float64, int8, int16, int32, int64,  # noqa: F401,E402
                   uint8, uint16, uint32, uint64, dtype, inf, nan, pi, newaxis, e)

host_syncs = 0   # device-to-host synchronisations so far (float(), int(), item(), bool(), get())


def _sync():
    global host_syncs
    host_syncs += 1


# --------------------------------------------------------------------------- wrapping and unwrapping
def _unwrap(value, what="argument"):
    """The NumPy array inside a fake array; scalars pass; a NumPy array is refused, as by CuPy."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(value)} ({what}): a NumPy array cannot be mixed into a "
                        "CuPy operation; move it with cupy.asarray() first [fake cupy]")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, what) for v in value)
    return value


def _unwrap_index(index):
    """Indices may hold fake arrays, NumPy integer arrays, slices, ints (CuPy converts the NumPy ones)."""
    if isinstance(index, ndarray):
        return index._a
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    return index


def _wrap(value):
    """NumPy results back into fake arrays; a NumPy scalar becomes a 0-d array, as CuPy returns."""
    if isinstance(value, _np.ndarray):
        return ndarray._of(value)
    if isinstance(value, _np.generic):
        return ndarray._of(_np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _call(fn, *args, **kwargs):
    """``fn`` (a NumPy function or method) on the arrays inside fake arrays; the result wrapped."""
    result = fn(*_unwrap(args), **{k: _unwrap(v, k) for k, v in kwargs.items()})
    out = kwargs.get("out")
    return out if out is not None else _wrap(result)     # out=: the caller's array, written in place


class _Flags:
    def __init__(self, a):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata

    def __getitem__(self, key):   # CuPy's flags support a["C_CONTIGUOUS"], ...
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


class _MemoryPointer:
    def __init__(self, a):
        self.ptr = a.ctypes.data


# Methods of cupy.ndarray that the stand-in offers (each maps to NumPy's method of the same name).
_METHODS = frozenset("""
    all any argmax argmin astype clip copy cumsum dot fill flatten max mean min nonzero prod ravel
    repeat reshape round squeeze std sum swapaxes take transpose var view
""".split())


class ndarray:
    """A device array: a NumPy array that refuses to be used as one."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("fake cupy: ndarray(memptr=/strides=) is not covered")
        self._a = _np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _of(cls, a):
        out = cls.__new__(cls)
        out._a = a
        return out

    # --- what CuPy refuses
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly. [fake cupy]")

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # --- NumPy's protocols: np.exp(a) and np.sum(a) dispatch here, as with CuPy
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o, "out") for o in kwargs["out"])
        result = getattr(ufunc, method)(*_unwrap(inputs, "ufunc input"), **kwargs)
        return None if method == "at" else _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        # As CuPy does: numpy.f(a) runs cupy.f when the module has it, else NumPy raises TypeError
        # ("no implementation found"). np.savez is one that raises here (see README.md).
        import sys
        if func.__module__ != "numpy" or func.__name__ not in _FUNCTIONS:
            return NotImplemented
        return getattr(sys.modules[__name__], func.__name__)(*args, **kwargs)

    # --- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: ndarray._of(self._a.T))
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a))
    device = property(lambda self: cuda.Device(0))

    @property
    def base(self):
        return None if self._a.base is None else ndarray._of(self._a.base)

    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} "
                                 "(or the fake cupy does not cover it)")
        method = getattr(self._a, name)

        def call(*args, **kwargs):
            return _call(method, *args, **kwargs)
        return call

    # --- moving data (each a host synchronisation)
    def get(self, stream=None, order="C", out=None):
        _sync()
        return self._a.copy(order=order)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self._a.shape:
            raise ValueError(f"Shape mismatch: {arr.shape} into {self._a.shape}")
        self._a[...] = arr

    def item(self):
        _sync()
        return self._a.item()

    def tolist(self):
        _sync()
        return self._a.tolist()

    def __float__(self):
        _sync()
        return float(self._a)

    def __int__(self):
        _sync()
        return int(self._a)

    def __index__(self):
        _sync()
        return self._a.__index__()

    def __bool__(self):
        _sync()
        return bool(self._a)

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return "fake_cupy." + repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        _sync()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    # --- indexing
    def __getitem__(self, index):
        return _wrap(self._a[_unwrap_index(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap_index(index)] = _unwrap(value, "value assigned into a CuPy array")

    __hash__ = None


def _binary(name):
    op = getattr(_np.ndarray, name)

    def method(self, other):
        result = op(self._a, _unwrap(other, f"operand of {name}"))
        return NotImplemented if result is NotImplemented else _wrap(result)
    method.__name__ = name
    return method


def _inplace(name):
    op = getattr(_np.ndarray, name)

    def method(self, other):
        op(self._a, _unwrap(other, f"operand of {name}"))
        return self
    method.__name__ = name
    return method


def _unary(name):
    op = getattr(_np.ndarray, name)

    def method(self):
        return _wrap(op(self._a))
    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _binary(f"__r{_name}__"))
    setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", _unary(f"__{_name}__"))


# --------------------------------------------------------------------------- moving data
def asarray(a, dtype=None, order=None):
    """Host to device (a copy), or the same device array (no copy when nothing changes)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == _np.dtype(dtype) else a.astype(dtype)
    return ndarray._of(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        return ndarray._of(_np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    if isinstance(a, (list, tuple)):
        _unwrap(a, "element of cupy.array's input")   # no NumPy arrays hidden in a list
    return ndarray._of(_np.array(a, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    import sys
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}: cupy.ascontiguousarray takes a cupy.ndarray [fake cupy]")
    return ndarray._of(_np.ascontiguousarray(a._a, dtype=dtype))


def get_default_memory_pool():
    return cuda.get_default_memory_pool()


def get_default_pinned_memory_pool():
    return cuda.get_default_pinned_memory_pool()


# --------------------------------------------------------------------------- ufuncs and functions
class ufunc:
    """A NumPy ufunc that takes and returns fake arrays (``cupy.add``, ``cupy.add.at``, ...)."""

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__

    def __call__(self, *args, **kwargs):
        for a in args:
            if not isinstance(a, (ndarray, int, float, complex, bool, _np.generic)):
                raise TypeError(f"Unsupported type {type(a)} for cupy.{self.__name__} [fake cupy]")
        return _call(self._u, *args, **kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"cupy.{self.__name__}.at needs a cupy.ndarray, got {type(a)}")
        self._u.at(a._a, _unwrap_index(indices), *(() if b is None else (_unwrap(b, "values"),)))

    def reduce(self, a, *args, **kwargs):
        return _call(self._u.reduce, a, *args, **kwargs)


_CREATORS = ("empty", "zeros", "ones", "full", "arange", "linspace", "eye", "identity")
_LIKE = ("empty_like", "zeros_like", "ones_like", "full_like")


def _creator(fn):
    def create(*args, **kwargs):
        return _wrap(fn(*args, **kwargs))
    create.__name__ = fn.__name__
    return create


# The NumPy functions (and ufuncs) the stand-in offers as cupy.<name>: each exists in CuPy with
# NumPy's meaning. A name outside this list is an AttributeError: check that CuPy has it, then add it.
_FUNCTIONS = frozenset("""
    abs absolute add all allclose amax amin any arange argmax argmin argsort array_equal broadcast_shapes
    broadcast_to ceil clip concatenate copyto count_nonzero cumsum divide dot einsum empty empty_like
    equal exp expand_dims eye flip floor full full_like greater greater_equal identity isfinite isinf
    isnan less less_equal linspace log log1p logical_and logical_not logical_or matmul max maximum mean
    min minimum moveaxis multiply negative nonzero not_equal ones ones_like pad power prod ravel reshape
    round sign sort split sqrt square squeeze stack subtract sum swapaxes take tanh tensordot transpose
    true_divide where zeros zeros_like
""".split())


def __getattr__(name):
    """The NumPy functions in _FUNCTIONS, taking and returning fake arrays (NumPy arrays refused)."""
    target = getattr(_np, name, None)
    if target is None or name not in _FUNCTIONS:
        raise AttributeError(f"module 'cupy' has no attribute {name!r} (or the fake cupy does not "
                             "cover it: see _FUNCTIONS)")
    if isinstance(target, _np.ufunc):
        value = ufunc(target)
    elif name in _CREATORS:
        value = _creator(target)
    elif callable(target) and not isinstance(target, type):
        def value(*args, **kwargs):
            if name in _LIKE and not isinstance(args[0] if args else kwargs.get("a"), ndarray):
                raise TypeError(f"Unsupported type for cupy.{name}: needs a cupy.ndarray [fake cupy]")
            return _call(target, *args, **kwargs)
        value.__name__ = name
    else:
        raise AttributeError(f"module 'cupy' has no attribute {name!r} (fake cupy)")
    globals()[name] = value
    return value


RawModule = _emulated.RawModule
RawKernel = _emulated.RawKernel
