"""``cupy.RawModule`` on the CPU: the kernel source is compiled by g++ against kernels/emu/cuda_emu.h.

The module text that minialex hands to CuPy (kernels/*.cu with its #includes inlined) is wrapped in
a translation unit that includes the emulation header first and exports every ``extern "C"
__global__`` function through ``MINIALEX_EMU_KERNEL``; the shared library is cached on disk by the
hash of everything that went into it, so only the first process of a test run pays the compile.

A kernel call checks each argument against the kernel's C signature, as a real GPU would need but
CuPy itself does not check (it passes what it is given; a wrong type reads garbage on the device):

    pointer parameter   a cupy.ndarray (a NumPy array is refused, as CuPy refuses it), C-contiguous,
                        of the pointee's dtype (float* float32, int* int32, long long* int64,
                        bool*/unsigned char* bool or uint8)
    int / unsigned      numpy.int32 / numpy.uint32 (CuPy passes a Python int as a 64-bit integer)
    long long           numpy.int64 or a Python int
    float               numpy.float32 (CuPy passes a Python float as a double)
    double              numpy.float64 or a Python float

Every launch is recorded in :data:`launches` (kernel names, in order) so tests can check which
kernels a code path ran.
"""
import ctypes
import hashlib
import os
import pathlib
import re
import subprocess
import tempfile

import numpy as np

KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(')
GXX_FLAGS = ("-std=c++20", "-O1", "-fno-strict-aliasing", "-shared", "-fPIC", "-Wall",
             "-Wno-unknown-pragmas", "-Werror")
SCHEDULE_SHUFFLE = 2   # cuda_emu.h: threads of a block reach each barrier in a shuffled order

launches = []  # names of the kernels launched so far, in order


class CompileException(Exception):
    """What cupy.cuda.compiler.CompileException is to NVRTC's errors."""


def _emu_dir():
    here = pathlib.Path(__file__).resolve()
    checkout = here.parents[3] / "kernels" / "emu"          # <repo>/tests/fake_cupy/cupy/ -> <repo>
    if (checkout / "cuda_emu.h").is_file():
        return checkout
    from minialex.cuda.sources import kernel_dir
    return kernel_dir() / "emu"


def _cache_dir():
    path = os.environ.get("MINIALEX_FAKE_CUPY_CACHE") or os.path.join(
        tempfile.gettempdir(), f"minialex-fake-cupy-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return pathlib.Path(path)


def _compile(code):
    """The ctypes library of ``code`` compiled against cuda_emu.h (cached by content)."""
    emu = _emu_dir()
    names = KERNEL_RE.findall(code)
    wrapper = ('#include "cuda_emu.h"\n' + code + "\n" +
               "".join(f"MINIALEX_EMU_KERNEL({n})\n" for n in names))
    key = hashlib.sha256("\0".join([wrapper, (emu / "cuda_emu.h").read_text(), *GXX_FLAGS]).encode())
    so = _cache_dir() / f"{key.hexdigest()[:24]}.so"
    if not so.exists():
        with tempfile.TemporaryDirectory(dir=so.parent) as tmp:
            src = pathlib.Path(tmp) / "module.cpp"
            src.write_text(wrapper)
            out = pathlib.Path(tmp) / "module.so"
            proc = subprocess.run(["g++", *GXX_FLAGS, f"-I{emu}", str(src), "-o", str(out)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise CompileException(f"fake cupy: g++ could not compile the module against "
                                       f"cuda_emu.h:\n{proc.stdout}{proc.stderr}")
            os.replace(out, so)        # atomic: a parallel process sees the whole file or none
    lib = ctypes.CDLL(str(so))
    lib.emu_last_error.restype = ctypes.c_char_p
    lib.emu_set_schedule(SCHEDULE_SHUFFLE, 1234)
    return lib, names


class RawModule:
    """``cupy.RawModule(code=..., options=...)``: compiled at the first ``get_function``, as CuPy does."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if (code is None) == (path is None):
            raise TypeError("One of code and path must be given")
        if not isinstance(options, tuple) or not all(isinstance(o, str) for o in options):
            raise TypeError(f"options must be a tuple of str, got {options!r}")
        if backend != "nvrtc":
            raise ValueError(f"fake cupy: only the nvrtc backend is emulated, got {backend!r}")
        self.code = code if code is not None else pathlib.Path(path).read_text()
        self.options = options
        self._lib = None

    def get_function(self, name):
        if self._lib is None:
            self._lib, self._names = _compile(self.code)
        if name not in self._names:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name!r} [fake cupy]")
        return RawKernel._of(self._lib, name)


class RawKernel:
    """A kernel of a RawModule: ``kernel(grid, block, args, shared_mem=0, stream=None)``."""

    @classmethod
    def _of(cls, lib, name):
        k = cls.__new__(cls)
        k.name, k._lib = name, lib
        sig = getattr(lib, f"emu_signature_{name}")
        sig.restype = ctypes.c_char_p
        pointees = getattr(lib, f"emu_pointees_{name}")
        pointees.restype = ctypes.c_char_p
        k.signature, k.pointees = sig().decode(), pointees().decode()
        k._launch = getattr(lib, f"emu_launch_{name}")
        k._launch.argtypes = [ctypes.POINTER(ctypes.c_uint)] * 2 + [ctypes.c_size_t, ctypes.c_void_p]
        return k

    def __init__(self, code, name, options=(), backend="nvrtc"):
        mod = RawModule(code=code, options=options, backend=backend)
        other = mod.get_function(name)
        self.__dict__.update(other.__dict__)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        grid, block = _dims(grid, "grid"), _dims(block, "block")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"kernel args must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name}: {len(args)} arguments for a kernel of {len(self.signature)} "
                            f"parameters ({self.signature}) [fake cupy]")
        holders = [self._argument(i, a) for i, a in enumerate(args)]
        argv = (ctypes.c_void_p * len(holders))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
        rc = self._launch((ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block), int(shared_mem), argv)
        if rc != 0:
            raise RuntimeError(f"{self.name}: launch failed in the emulator: "
                               f"{self._lib.emu_last_error().decode()} [fake cupy]")
        launches.append(self.name)

    _SCALARS = {"i": (np.int32,), "u": (np.uint32,), "l": (np.int64, int), "f": (np.float32,),
                "d": (np.float64, float)}
    _CTYPES = {"i": ctypes.c_int32, "u": ctypes.c_uint32, "l": ctypes.c_int64, "f": ctypes.c_float,
               "d": ctypes.c_double}
    _POINTEE_DTYPES = {"f": ("float32",), "i": ("int32",), "l": ("int64",), "b": ("bool", "uint8")}

    def _argument(self, i, a):
        from . import ndarray
        code, pointee = self.signature[i], self.pointees[i]
        where = f"{self.name} argument {i}"
        if code == "p":
            if not isinstance(a, ndarray):
                raise TypeError(f"{where}: Unsupported type {type(a)} for a pointer parameter "
                                "(a NumPy array must be moved with cupy.asarray first) [fake cupy]")
            if not a.flags.c_contiguous:
                raise ValueError(f"{where}: a non-contiguous array; the kernel reads it as C-contiguous "
                                 "[fake cupy]")
            wanted = self._POINTEE_DTYPES.get(pointee)
            if wanted is not None and a.dtype.name not in wanted:
                raise TypeError(f"{where}: a {a.dtype} array for a parameter of type {pointee}* "
                                f"(wants {' or '.join(wanted)}) [fake cupy]")
            return ctypes.c_void_p(a._a.ctypes.data)
        allowed = self._SCALARS.get(code, ())
        if isinstance(a, bool) or not isinstance(a, allowed) or (type(a) in (int, float) and type(a) not in allowed):
            raise TypeError(f"{where}: {type(a).__name__} for a parameter of C type '{code}' "
                            f"(wants {' or '.join(t.__name__ for t in allowed)}; CuPy passes a Python int "
                            "as a 64-bit integer and a Python float as a double) [fake cupy]")
        return self._CTYPES[code](a.item() if isinstance(a, np.generic) else a)


def _dims(value, what):
    if isinstance(value, int):
        value = (value,)
    if not isinstance(value, tuple) or not 1 <= len(value) <= 3 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{what} must be a tuple of 1 to 3 ints, got {value!r}")
    return tuple(int(v) for v in value) + (1,) * (3 - len(value))
