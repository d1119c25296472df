"""Array modules and devices: the one place that knows NumPy from CuPy.

Every op is written once against an "array module" ``xp`` (``numpy`` on the
CPU, ``cupy`` on an NVIDIA GPU), in the style of ``cupy.get_array_module``.
Nothing here imports CuPy until a user asks for the ``"cuda"`` device, so
minialex imports and runs on machines without CuPy or without a GPU.

Random numbers come from one host generator (NumPy's), whatever the device, reset by
:func:`manual_seed` and saved in checkpoints: so dropout masks and initial weights are the same
on the CPU and the GPU for the same seed, and a resumed GPU run draws what an uninterrupted one
would have. (Drawing a dropout mask on the host and copying it costs a little on a GPU: for the
paper's fc6 at batch 128, 512K floats drawn and 512 KB copied a step.)
"""
import numpy as np

DEVICES = ("cpu", "cuda")

_cupy = None  # the cupy module, once a user has asked for "cuda"
_rng = np.random.default_rng(0)   # the one generator, for every device


def check_device(device):
    """Return ``device`` as a canonical name ("cpu" or "cuda"), or raise ValueError."""
    name = str(device)
    if name.startswith("cuda:"):  # "cuda:0": the only GPU we drive is the current one
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    return name


def cupy_module():
    """Import CuPy and check that a GPU is there; raise RuntimeError saying which is missing."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed: "
            "pip install 'minialex[cuda12]' (or 'minialex[cuda13]')") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"device 'cuda': CuPy is installed but CUDA is not usable here ({exc})") from exc
    if count == 0:
        raise RuntimeError("device 'cuda': CuPy is installed but no CUDA GPU was found")
    _cupy = cupy
    return cupy


def is_cupy_array(a):
    return type(a).__module__.split(".")[0] == "cupy"


def device_of(a):
    """The device name of an ndarray: "cuda" for a CuPy array, else "cpu"."""
    return "cuda" if is_cupy_array(a) else "cpu"


def xp_of(a):
    """The array module (numpy or cupy) that owns array ``a``.

    A CuPy array made before minialex was asked for "cuda" (``Tensor(cupy.ones(3))``) imports
    CuPy here: ``_cupy`` may still be None at that point."""
    return cupy_module() if is_cupy_array(a) else np


def xp_for(device):
    """The array module for a device name."""
    return cupy_module() if check_device(device) == "cuda" else np


def to_device(a, device):
    """Copy array ``a`` to ``device`` (no copy when it is already there)."""
    device = check_device(device)
    if device == device_of(a):
        return a
    if device == "cuda":
        return cupy_module().asarray(a)
    return a.get()  # cupy -> numpy


def rng():
    """The generator every random draw of minialex comes from (a numpy.random.Generator).

    It lives on the host for every device: ops on the GPU draw here and copy what they drew, so
    the same seed gives the same numbers on the CPU and the GPU."""
    return _rng


def manual_seed(seed):
    """Seed the generator (like ``torch.manual_seed``)."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def get_rng_state():
    """The generator's state as a JSON-able dict (for checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state):
    _rng.bit_generator.state = state


def reuse_freed_memory():
    """Ask glibc's malloc to keep freed large blocks for reuse instead of returning them to the OS.

    A training step allocates and frees the same large arrays every time (im2col columns,
    activations, gradients). By default glibc unmaps every freed block over 32 MB, and the next
    step pays again to fault in and zero fresh pages: measured on the 2-core machine, a paper
    AlexNet step at batch 16 took 1.2-2.1 s that way and a steady 0.95 s with this setting.
    The price is that the process keeps its peak memory until it exits. The trainer and the
    benchmarks call this; a library user may too. Returns False (and does nothing) off glibc.
    """
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3             # from glibc's <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30) and mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
