"""The CuPy stand-in (tests/fake_cupy) is strict: it refuses what the real CuPy refuses, and its
kernel launcher refuses arguments a GPU would misread. Skipped on a real GPU."""
import numpy as np
import pytest

from conftest import FAKE_CUPY

pytestmark = pytest.mark.skipif(not FAKE_CUPY, reason="tests the CuPy stand-in, not in use here")


@pytest.fixture
def cupy():
    import cupy
    return cupy


def test_no_implicit_conversion_or_mixing(cupy):
    a = cupy.arange(6, dtype=cupy.float32)
    for bad in (lambda: np.asarray(a), lambda: np.savez("/dev/null", a=a), lambda: a + np.ones(6),
                lambda: np.ones(6) * a, lambda: a.__setitem__(slice(None), np.zeros(6)),
                lambda: cupy.exp([1.0, 2.0])):
        with pytest.raises(TypeError):
            bad()
    np.testing.assert_array_equal(a.get(), np.arange(6))
    np.testing.assert_array_equal(cupy.asnumpy(cupy.asarray(np.ones(2))), [1.0, 1.0])
    with pytest.raises(AttributeError):
        a.flags.writeable
    with pytest.raises(AttributeError):
        a.ctypes


def test_reductions_are_device_arrays_and_syncs_are_counted(cupy):
    a = cupy.ones((2, 3))
    total = a.sum()
    assert isinstance(total, cupy.ndarray) and total.shape == ()
    before = cupy.host_syncs
    assert float(total) == 6.0 and a.max().item() == 1.0
    assert cupy.host_syncs - before == 2


def test_random_differs_from_numpy(cupy):
    assert not np.allclose(cupy.random.default_rng(0).random(5).get(), np.random.default_rng(0).random(5))


def test_kernel_arguments_are_checked_against_the_c_signature(cupy):
    from minialex.cuda.sources import read_source
    fn = cupy.RawModule(code=read_source("elementwise.cu"), options=("-std=c++17",)).get_function("sgd_momentum")
    w, g, v = cupy.ones(8, dtype=cupy.float32), cupy.ones(8, dtype=cupy.float32), cupy.zeros(8, dtype=cupy.float32)
    good = (w, g, v, np.float32(0.1), np.float32(0.9), np.float32(0.0), np.int64(8))
    fn((1,), (32,), good)
    np.testing.assert_allclose(w.get(), 0.9)   # v = -0.1 g, w = w + v
    for i, bad, err in [(3, 0.1, TypeError),                              # a Python float for `float`
                        (6, np.int32(8), TypeError),                      # int32 for `long long`
                        (0, np.ones(8, np.float32), TypeError),           # a host array
                        (0, cupy.ones(8, dtype=cupy.float64), TypeError),  # float64 for float*
                        (0, cupy.ones(16, dtype=cupy.float32)[::2], ValueError)]:  # not contiguous
        args = list(good)
        args[i] = bad
        with pytest.raises(err):
            fn((1,), (32,), tuple(args))
    with pytest.raises(RuntimeError, match="not found"):
        cupy.RawModule(code=read_source("elementwise.cu")).get_function("no_such_kernel")
