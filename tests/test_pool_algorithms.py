"""max_pool2d's phase-plane algorithm (``functional/max_pool2d_phase_planes.py``) against the plain one in
``functional/max_pool2d.py``: the same outputs and the same gradients, bit for bit, on tie-free inputs,
on inputs full of ties, with NaN and -inf; and how ``F.pool_algorithm`` chooses. (Both algorithms are
also checked against ``minialex.reference`` and by gradcheck in test_ops.py.)"""
import sys
import threading

import numpy as np
import pytest

import minialex.functional as F
from minialex.functional import max_pool2d_phase_planes as phase_planes_module

from conftest import LAYOUTS, make, randn, tie_free

# shape, kernel, stride, padding, ceil_mode: AlexNet's 3/2 pools, ceil and padding, non-square, stride > kernel
CASES = [
    pytest.param((2, 3, 13, 13), 3, 2, 0, False, id="pool5-like-3s2"),
    pytest.param((1, 4, 12, 9), 3, 2, 1, True, id="3s2-pad1-ceil"),
    pytest.param((2, 2, 7, 10), (3, 2), (2, 1), (1, 1), False, id="kernel3x2-stride2x1-pad1"),
    pytest.param((1, 2, 9, 8), 2, 3, 0, True, id="stride3-gt-kernel2-ceil"),
    pytest.param((3, 1, 6, 6), 1, 1, 0, False, id="kernel1"),
    pytest.param((1, 1, 18, 17), (17, 16), 1, 0, False, id="272-offsets"),
]

INPUTS = {
    "tie-free": lambda shape: tie_free(*shape),
    "many-ties": lambda shape: np.random.default_rng(3).integers(-2, 3, size=shape).astype(np.float64),
    "nan-and-inf": lambda shape: _with_specials(randn(*shape, seed=4)),
}


def _with_specials(x):
    flat = x.reshape(-1)
    flat[::7] = np.nan
    flat[3::11] = -np.inf
    flat[5::13] = np.inf
    return x


def _pool(algorithm, x, kind, dtype, g, *args):
    t = make(x, kind=kind, dtype=dtype, requires_grad=True)
    with F.pool_algorithm(algorithm):
        y = F.max_pool2d(t, *args)
    y.backward(g.astype(dtype))                 # outside the block: the forward's choice holds
    return y.numpy(), t.grad


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("values", INPUTS)
@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", CASES)
def test_phase_planes_equal_the_plain_version_bit_for_bit(values, dtype, kind, shape, kernel, stride, padding,
                                                           ceil_mode):
    x = INPUTS[values](shape)
    args = (kernel, stride, padding, ceil_mode)
    y_plain = F.max_pool2d(make(x), *args)
    g = randn(*y_plain.shape, seed=5)
    y_fast, dx_fast = _pool("phase_planes", x, kind, dtype, g, *args)
    y_ref, dx_ref = _pool("plain", x, kind, dtype, g, *args)
    assert y_fast.dtype == y_ref.dtype == dx_fast.dtype == dx_ref.dtype == dtype
    np.testing.assert_array_equal(y_fast, y_ref)      # NaN == NaN here
    np.testing.assert_array_equal(dx_fast, dx_ref)


def test_auto_takes_the_phase_planes_and_plain_does_not(monkeypatch):
    calls = []
    original = phase_planes_module.max_pool2d_phase_planes

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)
    monkeypatch.setattr(sys.modules["minialex.functional.max_pool2d"], "max_pool2d_phase_planes", counting)
    x = make(tie_free(2, 3, 7, 7))
    F.max_pool2d(x, 3, 2)                               # the default
    with F.pool_algorithm("plain"):
        F.max_pool2d(x, 3, 2)
        with F.pool_algorithm("auto"):
            F.max_pool2d(x, 3, 2)
        with F.pool_algorithm("phase_planes"):
            F.max_pool2d(x, 3, 2)
    assert calls == [(2, 3, 7, 7)] * 3


def test_the_setting_belongs_to_the_thread():
    seen, entered, release = {}, threading.Event(), threading.Event()

    def other():
        with F.pool_algorithm("plain"):
            entered.set()
            release.wait(5)
            seen["other"] = F.current_pool_algorithm()
    thread = threading.Thread(target=other)
    with F.pool_algorithm("phase_planes"):
        thread.start()
        entered.wait(5)
        seen["main"] = F.current_pool_algorithm()
        release.set()
        thread.join(5)
    assert seen == {"main": "phase_planes", "other": "plain"}
    assert F.current_pool_algorithm() == "auto"


def test_unknown_algorithm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown algorithm 'fast'; choose one of auto, plain, phase_planes"):
        with F.pool_algorithm("fast"):
            pass
