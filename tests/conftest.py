"""Shared fixtures and input makers for the engine's tests.

* ``device``: every test that takes it runs on "cpu" and on "cuda". Where CuPy cannot reach a GPU,
  "cuda" runs on the strict CuPy stand-in in tests/fake_cupy (NumPy arrays that refuse to be used
  as NumPy's, and our .cu kernels compiled for the CPU emulator): see tests/fake_cupy/README.md.
  MINIALEX_FAKE_CUPY=1 forces the stand-in, =0 forbids it (then "cuda" is skipped without a GPU).
* Inputs that make bugs visible (docs/writing-an-op.md, "Tests"):
    ``tie_free``      a shuffled arange: no two values equal, so max-pool has one argmax;
    ``away_from_kink`` |x| > 0.1, so a finite difference never straddles ReLU's kink at 0;
    ``layout``        the same values as a contiguous, a strided or a transposed array.
* ``check_grads``: gradcheck in float64 (on the CPU, where finite differences are exact
  enough), and on "cuda" also the device's autograd against the CPU's.
* ``MINIALEX_RANKS=1`` for the whole suite and its subprocesses: `minialex train` trains in one process
  unless a test asks for ranks (tests/test_distributed.py tests --ranks auto itself); its runs and their
  messages are compared with one process's.
"""
import os
import pathlib
import sys

import numpy as np
import pytest

FAKE_CUPY_DIR = pathlib.Path(__file__).resolve().parent / "fake_cupy"
os.environ["MINIALEX_RANKS"] = "1"


def _real_gpu():
    """Whether a real CuPy is installed and reaches a GPU (checked in a child process, so that a
    failed import leaves nothing behind in this one)."""
    import subprocess
    probe = "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0; assert not hasattr(cupy, 'IS_FAKE')"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _install_fake_cupy():
    """Put the stand-in first on sys.path, here and in the subprocesses the tests start."""
    sys.path.insert(0, str(FAKE_CUPY_DIR))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAKE_CUPY_DIR), os.environ.get("PYTHONPATH")]))
    os.environ["MINIALEX_FAKE_CUPY"] = "1"   # children inherit the decision


_FAKE_SETTING = os.environ.get("MINIALEX_FAKE_CUPY", "")
if _FAKE_SETTING not in ("", "0", "1"):
    raise pytest.UsageError(f"MINIALEX_FAKE_CUPY={_FAKE_SETTING!r}: expected 0 (never), 1 (always) or unset")
if _FAKE_SETTING == "1" or (_FAKE_SETTING == "" and not _real_gpu()):
    _install_fake_cupy()
FAKE_CUPY = os.environ.get("MINIALEX_FAKE_CUPY") == "1"

import minialex  # noqa: E402  (after the stand-in is on the path)
from minialex import Tensor, backend  # noqa: E402

LAYOUTS = ("contiguous", "strided", "transposed")


def _cuda_skip_reason():
    try:
        backend.cupy_module()
    except RuntimeError as exc:
        return str(exc)
    return None


_CUDA_SKIP = _cuda_skip_reason()


def pytest_report_header(config):
    if FAKE_CUPY:
        return "cuda: the CuPy stand-in in tests/fake_cupy (CPU emulation; no GPU timing)"
    return "cuda: " + ("real CuPy on a GPU" if _CUDA_SKIP is None else f"skipped ({_CUDA_SKIP})")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    _CUDA_SKIP is not None, reason=f"no GPU: {_CUDA_SKIP}"))])
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state (dropout masks, init)."""
    minialex.manual_seed(0)
    yield


# ----------------------------------------------------------------------------- inputs
def rng(seed=0):
    return np.random.default_rng(seed)


def randn(*shape, seed=0, scale=1.0):
    """float64 N(0, scale^2) values."""
    return scale * rng(seed).standard_normal(shape)


def tie_free(*shape, seed=0, scale=0.125):
    """A shuffled arange (float64): all values distinct, spaced by ``scale``
    (1/8: exact in float32 too), centred on 0."""
    n = int(np.prod(shape))
    return (rng(seed).permutation(n).astype(np.float64) - n // 2).reshape(shape) * scale


def away_from_kink(*shape, seed=0, margin=0.1):
    """float64 values with |x| >= margin (random sign), so ReLU's derivative is constant nearby."""
    r = rng(seed)
    return r.choice([-1.0, 1.0], size=shape) * (margin + r.uniform(0.0, 1.0, size=shape))


def layout(a, kind, xp=np):
    """The values of ``a`` as an array of ``xp`` laid out as ``kind``:
    "contiguous", "strided" (every other element of a bigger buffer along the last axis),
    or "transposed" (a transposed view of the transposed copy: same values, reversed strides;
    "strided" where transposing would leave it contiguous)."""
    a = xp.asarray(a)
    if kind == "contiguous":
        return a.copy(order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
    if kind == "strided":
        buf = xp.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)  # (..., 2W)
        buf[..., ::2] = a
        view = buf[..., ::2]                                               # (..., W), stride 2
    elif kind == "transposed":
        view = xp.ascontiguousarray(a.T).T                                 # same values, F order
        if view.flags.c_contiguous:  # a (1, n) or 1-D array reads the same both ways: use strides
            return layout(a, "strided", xp)
    else:
        raise ValueError(kind)
    assert not view.flags.c_contiguous
    return view


def make(a, device="cpu", kind="contiguous", dtype=None, requires_grad=False):
    """A Tensor on ``device`` with ``a``'s values (cast to ``dtype``) in layout ``kind``."""
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return Tensor(layout(a, kind, backend.xp_for(device)), requires_grad=requires_grad)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, msg=""):
    """Compare a Tensor/array (any device) with a NumPy array."""
    if isinstance(actual, Tensor):
        actual = actual.numpy()
    elif backend.is_cupy_array(actual):
        actual = actual.get()
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=msg)


# ----------------------------------------------------------------------------- gradients
def check_grads(fn, inputs, device="cpu", mode="auto", rtol=1e-6, atol=1e-8, **kwargs):
    """gradcheck ``fn`` in float64 for every float input; on a GPU also compare that device's
    gradients with the CPU's for the same output weighting, in float64 (CuPy's generic code) and
    in float32 (where our CUDA kernels run).

    The tolerances are tighter than gradcheck's defaults (1e-3, 1e-5): float64 central
    differences with eps=1e-6 are good to ~1e-9 on these well-scaled inputs, and a 0.1%
    error in a backward must not pass. In float32 the kernels sum in another order than NumPy,
    so there the bar is 1e-4 of the gradient's largest magnitude."""
    minialex.gradcheck(fn, inputs, mode=mode, rtol=rtol, atol=atol, **kwargs)
    if device == "cpu":
        return
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 1e-4)):
        grads = {dev: device_grads(fn, inputs, dev, dtype) for dev in ("cpu", device)}
        for i, (g_cpu, g_dev) in enumerate(zip(grads["cpu"], grads[device])):
            scale = max(1.0, float(np.abs(g_cpu).max(initial=0.0)))
            assert_close(g_dev, g_cpu, rtol=tol, atol=tol * 1e-3 * scale,
                         msg=f"{np.dtype(dtype).name} gradient of input {i} on {device}")


def device_grads(fn, inputs, device, dtype):
    """The gradients (NumPy arrays) of ``sum(fn(*inputs) * w)`` for a fixed random ``w``, with
    every float input moved to ``device`` as ``dtype``."""
    leaves = [x.detach().to(device, dtype).requires_grad_() if isinstance(x, Tensor) and x.dtype.kind == "f"
              else (x.to(device) if isinstance(x, Tensor) else x) for x in inputs]
    out = fn(*leaves)
    weight = rng(1).standard_normal(out.shape).astype(dtype)
    out.backward(Tensor(weight, device=device))
    return [backend.to_device(x.grad, "cpu") for x in leaves if isinstance(x, Tensor) and x.requires_grad]
