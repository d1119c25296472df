"""gradcheck itself: it passes on correct ops and FAILS on deliberately broken backwards
(off by a factor, wrong at one element, or summing over the wrong window), in both the
full-Jacobian and the random-direction modes. This is what proves the op tests can fail."""
import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import GradcheckError, Tensor, gradcheck
from minialex.functional.local_response_norm import window_sum

from conftest import randn

MODES = ["full", "random"]


# ----------------------------------------------------------------------------- broken ops
def scaled_square(x, factor=1.0):
    """y = x^2 whose backward is multiplied by ``factor`` (1.0: correct)."""
    out = x.data * x.data
    return Tensor.from_op(out, (x,), lambda g: (factor * 2.0 * x.data * g,), "scaled_square")


def wrong_at_one_element(a, b, where=(1, 2)):
    """y = a * b with the gradient of b wrong at one element ``where``."""
    out = a.data * b.data

    def backward(g):
        gb = g * a.data
        gb[where] += 0.5 * g[where]  # d out[where] / d b[where] is off by 0.5
        return g * b.data, gb
    return Tensor.from_op(out, (a, b), backward, "wrong_at_one_element")


def lrn_swapped_window(x, size, alpha=1.0, beta=0.75, k=1.0):
    """LRN whose backward sums over the FORWARD window instead of its mirror image: the
    classic bug, invisible for odd sizes (the window is symmetric) and for tiny alpha."""
    n = size
    a = x.data.reshape(x.shape[0], x.shape[1], -1)            # (N, C, M)
    s = k + (alpha / n) * window_sum(a * a, n // 2, (n - 1) // 2)
    b = a * s ** -beta

    def backward(g):
        g = g.reshape(a.shape)
        t = window_sum(g * b / s, n // 2, (n - 1) // 2)        # BUG: should be ((n - 1) // 2, n // 2)
        return ((g * s ** -beta - (2.0 * alpha * beta / n) * a * t).reshape(x.shape),)
    return Tensor.from_op(b.reshape(x.shape), (x,), backward, "lrn_swapped_window")


# ----------------------------------------------------------------------------- it passes
@pytest.mark.parametrize("mode", MODES)
def test_passes_on_a_correct_op(mode):
    result = gradcheck(scaled_square, [Tensor(randn(3, 4))], mode=mode)
    assert result.ok and bool(result) and result.mode == mode
    assert "passed" in result.report()


def test_auto_mode_picks_full_for_small_and_random_for_large():
    x = Tensor(randn(4, 5))
    assert gradcheck(F.relu, [Tensor(np.abs(randn(2, 2)) + 0.5)]).mode == "full"
    assert gradcheck(lambda t: t * 2.0, [x], full_limit=10).mode == "random"


def test_works_in_float64_on_float32_inputs_and_leaves_them_alone():
    x32 = Tensor(randn(3, 3).astype(np.float32))
    before = x32.numpy().copy()
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t * t
    gradcheck(fn, [x32])
    assert set(seen) == {np.dtype(np.float64)}
    np.testing.assert_array_equal(x32.numpy(), before)
    assert x32.grad is None


def test_keeps_non_contiguous_inputs_non_contiguous():
    base = randn(4, 6)
    view = Tensor(base[:, ::2])  # a strided view
    assert not view.data.flags.c_contiguous
    layouts = []

    def fn(t):
        layouts.append(t.data.flags.c_contiguous)
        return t * 3.0
    gradcheck(fn, [view])
    assert layouts and not any(layouts)


def test_non_float_and_non_tensor_inputs_are_passed_through():
    target = Tensor(np.array([0, 2]))
    result = gradcheck(lambda z, t, red: F.cross_entropy(z, t, red), [Tensor(randn(2, 3)), target, "sum"])
    assert result.ok


# ----------------------------------------------------------------------------- it fails
@pytest.mark.parametrize("factor", [1.5, 1.01, -1.0], ids=["x1.5", "x1.01", "sign-flipped"])
@pytest.mark.parametrize("mode", MODES)
def test_fails_on_a_backward_off_by_a_factor(mode, factor):
    x = Tensor(randn(3, 4))
    with pytest.raises(GradcheckError, match="FAILED"):
        gradcheck(lambda t: scaled_square(t, factor), [x], mode=mode)
    result = gradcheck(lambda t: scaled_square(t, factor), [x], mode=mode, raise_exception=False)
    assert not result.ok and not bool(result) and result.mode == mode


def test_full_report_names_the_input_and_element():
    a, b = Tensor(randn(3, 4)), Tensor(randn(3, 4, seed=1))
    with pytest.raises(GradcheckError, match=r"input 1 element \(1, 2\), output element \(1, 2\)"):
        gradcheck(wrong_at_one_element, [a, b], mode="full")
    result = gradcheck(wrong_at_one_element, [a, b], mode="full", raise_exception=False)
    assert result.worst["input"] == 1 and result.worst["index"] == (1, 2)
    assert result.worst["analytic"] == pytest.approx(result.worst["numeric"] + 0.5, abs=1e-6)


def test_random_mode_catches_a_single_wrong_element():
    a, b = Tensor(randn(3, 4)), Tensor(randn(3, 4, seed=1))
    result = gradcheck(wrong_at_one_element, [a, b], mode="random", raise_exception=False)
    assert not result.ok
    assert "direction" in result.report() and "FAILED" in result.report()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [2, 4], ids=["size2", "size4"])
def test_fails_on_lrn_with_the_wrong_window_for_even_sizes(mode, size):
    x = Tensor(randn(2, 6, 2, 3, scale=1.5))
    fn = lambda t: lrn_swapped_window(t, size, alpha=1.0)  # noqa: E731
    with pytest.raises(GradcheckError, match="FAILED"):
        gradcheck(fn, [x], mode=mode)
    gradcheck(lambda t: F.local_response_norm(t, size, alpha=1.0), [x], mode=mode)  # the real op passes


def test_wrong_window_is_invisible_for_odd_size_and_hides_under_tiny_alpha():
    """Why the op tests use even sizes and alpha=1: the same bug passes otherwise (odd size:
    the window is symmetric; alpha=1e-4: the error hides under a float32-style tolerance)."""
    x = Tensor(randn(2, 6, 2, 3, scale=1.5))
    assert gradcheck(lambda t: lrn_swapped_window(t, 5, alpha=1.0), [x]).ok
    loose = dict(atol=1e-3, rtol=1e-2, raise_exception=False)
    assert gradcheck(lambda t: lrn_swapped_window(t, 4, alpha=1e-4), [x], **loose).ok
    assert not gradcheck(lambda t: lrn_swapped_window(t, 4, alpha=1.0), [x], **loose).ok


# ----------------------------------------------------------------------------- misuse
def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="no floating-point tensor"):
        gradcheck(lambda t: t, [Tensor(np.array([1, 2]))])
    with pytest.raises(ValueError, match="mode must be"):
        gradcheck(lambda t: t * 2.0, [Tensor(randn(2))], mode="sideways")
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda t: 1.0, [Tensor(randn(2))])


def test_dropout_without_a_fixed_mask_fails():
    """Re-seeding inside fn is what makes dropout checkable: without it the mask changes."""
    minialex.manual_seed(0)
    result = gradcheck(lambda t: F.dropout(t, 0.5), [Tensor(randn(4, 6))], mode="full", raise_exception=False)
    assert not result.ok
