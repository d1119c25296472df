"""Every functional op: forward against the naive-loop oracle (``minialex.reference``) or a
NumPy formula, gradients by ``minialex.gradcheck`` in float64, on inputs chosen so that the
checks can fail (odd and non-square sizes, batch 1, stride > 1, padding, groups 2 and 3,
tie-free pooling inputs, large LRN alpha with odd and even sizes, inputs away from ReLU's
kink, non-contiguous arrays). Where PyTorch is importable, every op is also compared with torch's,
forward and gradients (the last section, through ``torch_oracle.compare_with_torch``).
"""
import math

import sys

import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import Tensor, reference

from conftest import LAYOUTS, assert_close, away_from_kink, check_grads, make, randn, tie_free
from torch_oracle import compare_with_torch, torch_or_skip

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
_cache = {}


def cached(key, compute):
    """The naive-loop references are slow: compute each case once per session."""
    if key not in _cache:
        _cache[key] = compute()
    return _cache[key]


# ============================================================================= conv2d
# (N, C, H, W), (O, kH, kW), stride, padding, groups, bias
CONV_CASES = [
    pytest.param((2, 3, 5, 6), (4, 3, 3), 1, 0, 1, True, id="3x3-nonsquare-input"),
    pytest.param((2, 3, 7, 5), (4, 3, 3), 2, 1, 1, True, id="stride2-pad1-odd"),
    pytest.param((1, 4, 7, 6), (6, 3, 3), 2, 1, 2, True, id="groups2-stride2-pad1-batch1"),
    pytest.param((2, 6, 6, 5), (3, 3, 2), (1, 2), (1, 0), 3, True, id="groups3-kernel3x2-stride1x2-pad1x0"),
    pytest.param((1, 2, 3, 3), (2, 5, 5), 1, 1, 1, True, id="kernel-fills-padded-input-batch1"),
    pytest.param((2, 2, 8, 7), (3, 2, 2), 3, 0, 1, False, id="stride3-gt-kernel2-nobias"),
    pytest.param((1, 3, 13, 11), (2, 5, 5), 4, 0, 1, True, id="k5-stride4-conv1-like"),
]


def _conv_inputs(xshape, wshape, groups, bias, seed=0):
    N, C, H, W = xshape
    O, kH, kW = wshape
    x = randn(*xshape, seed=seed)
    w = randn(O, C // groups, kH, kW, seed=seed + 1, scale=0.5)
    b = randn(O, seed=seed + 2) if bias else None
    return x, w, b


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape,wshape,stride,padding,groups,bias", CONV_CASES)
def test_conv2d_forward(device, dtype, kind, xshape, wshape, stride, padding, groups, bias):
    x, w, b = _conv_inputs(xshape, wshape, groups, bias)
    expected = cached(("conv", xshape, wshape, stride, padding, groups, bias),
                      lambda: reference.conv2d(x, w, b, stride, padding, groups))
    y = F.conv2d(make(x, device, kind, dtype), make(w, device, kind, dtype),
                 None if b is None else make(b, device, dtype=dtype), stride, padding, groups)
    assert y.dtype == dtype and y.device == device
    assert y.shape == expected.shape
    assert_close(y, expected, **TOL[dtype])


@pytest.mark.parametrize("xshape,wshape,stride,padding,groups,bias", CONV_CASES[:6])
def test_conv2d_gradcheck(device, xshape, wshape, stride, padding, groups, bias):
    x, w, b = _conv_inputs(xshape, wshape, groups, bias)
    inputs = [make(x, kind="strided"), make(w)] + ([make(b)] if bias else [])
    check_grads(lambda x, w, b=None: F.conv2d(x, w, b, stride, padding, groups), inputs, device)


def test_conv2d_gradcheck_random_direction_on_a_bigger_layer(device):
    """conv2 of AlexNet in miniature (5x5, pad 2, groups 2): too big for the full Jacobian."""
    x, w, b = _conv_inputs((2, 8, 9, 9), (8, 5, 5), 2, True)
    check_grads(lambda x, w, b: F.conv2d(x, w, b, 1, 2, 2), [make(x), make(w), make(b)], device,
                mode="random", n_directions=4, atol=1e-7)  # a projection on ~1300 outputs: more rounding


# ============================================================================= linear
LINEAR_CASES = [
    pytest.param((3, 5), 4, True, id="batch3"),
    pytest.param((1, 5), 4, True, id="batch1"),
    pytest.param((2, 3, 5), 4, True, id="leading-dims"),
    pytest.param((5,), 3, True, id="1d-input"),
    pytest.param((3, 5), 2, False, id="nobias"),
]


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("xshape,out_features,bias", LINEAR_CASES)
def test_linear_forward(device, kind, xshape, out_features, bias):
    x, w = randn(*xshape), randn(out_features, xshape[-1], seed=1)
    b = randn(out_features, seed=2) if bias else None
    y = F.linear(make(x, device, kind), make(w, device, kind), None if b is None else make(b, device))
    assert y.shape == xshape[:-1] + (out_features,)
    assert_close(y, x @ w.T + (0 if b is None else b), **TOL[np.float64])


@pytest.mark.parametrize("xshape,out_features,bias", LINEAR_CASES)
def test_linear_gradcheck(device, xshape, out_features, bias):
    x, w = randn(*xshape), randn(out_features, xshape[-1], seed=1)
    inputs = [make(x), make(w, kind="transposed")] + ([make(randn(out_features, seed=2))] if bias else [])
    check_grads(lambda *t: F.linear(*t), inputs, device)


@pytest.fixture
def linear_in_pieces(monkeypatch):
    """linear runs its products in pieces of the output features on 2 threads, whatever the layer's size."""
    module = sys.modules["minialex.functional.linear"]
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")
    monkeypatch.setattr(module, "product_threads", lambda a: 3)     # 3 pieces: uneven ones too
    monkeypatch.setattr(module, "MIN_WEIGHTS_IN_PIECES", 1)


@pytest.mark.parametrize("xshape,out_features,bias", LINEAR_CASES + [pytest.param((4, 6), 7, True, id="7-outputs")])
def test_linear_in_pieces_forward_and_gradcheck(xshape, out_features, bias, linear_in_pieces):
    x, w = randn(*xshape), randn(out_features, xshape[-1], seed=1)
    b = randn(out_features, seed=2) if bias else None
    y = F.linear(make(x), make(w), None if b is None else make(b))
    assert_close(y, x @ w.T + (0 if b is None else b), **TOL[np.float64])
    inputs = [make(x), make(w)] + ([make(b)] if bias else [])
    check_grads(lambda *t: F.linear(*t), inputs)


def test_linear_in_pieces_only_one_gradient(linear_in_pieces):
    x, w = randn(3, 5), randn(4, 5, seed=1)
    for needs in ("x", "w"):
        xt, wt = make(x, requires_grad=needs == "x"), make(w, requires_grad=needs == "w")
        F.linear(xt, wt).backward(np.ones((3, 4)))
        assert (xt.grad is None) == (needs == "w") and (wt.grad is None) == (needs == "x")
        assert_close(xt.grad if needs == "x" else wt.grad, np.ones((3, 4)) @ w if needs == "x" else np.ones((4, 3)) @ x,
                     **TOL[np.float64])


# ============================================================================= relu, flatten
@pytest.mark.parametrize("kind", LAYOUTS)
def test_relu_forward(device, kind):
    x = away_from_kink(3, 4, 5)
    assert_close(F.relu(make(x, device, kind)), np.maximum(x, 0), rtol=0, atol=0)


def test_relu_gradient_is_zero_at_the_kink(device):
    x = make(np.array([-1.0, 0.0, 2.0]), device, requires_grad=True)
    F.relu(x).sum().backward()
    assert_close(x.grad, [0.0, 0.0, 1.0], rtol=0, atol=0)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_relu_gradcheck_away_from_kink(device, kind):
    check_grads(F.relu, [make(away_from_kink(2, 3, 4, 5), kind=kind)], device)


@pytest.mark.parametrize("start,end,shape", [
    pytest.param(1, -1, (2, 24), id="default-NCHW-to-N-CHW"),
    pytest.param(0, -1, (48,), id="all"),
    pytest.param(1, 2, (2, 12, 2), id="C-and-H"),
    pytest.param(2, 3, (2, 3, 8), id="H-and-W"),
])
def test_flatten(device, start, end, shape):
    x = randn(2, 3, 4, 2)
    t = make(x, device, "transposed")
    y = F.flatten(t, start, end)
    assert y.shape == shape
    assert_close(y, x.reshape(shape), rtol=0, atol=0)  # C, H, W order, as torch.flatten
    check_grads(lambda t: F.flatten(t, start, end), [make(x, kind="strided")], device)


# ============================================================================= max_pool2d
# shape, kernel, stride, padding, ceil_mode
POOL_CASES = [
    pytest.param((2, 3, 7, 7), 3, 2, 0, False, id="overlap3s2-odd"),
    pytest.param((1, 2, 6, 8), 3, 2, 0, True, id="overlap3s2-ceil-batch1"),
    pytest.param((2, 2, 6, 4), 2, None, 0, False, id="2x2s2-default-stride"),
    pytest.param((1, 2, 5, 7), 2, 2, 0, True, id="2x2s2-ceil-odd"),
    pytest.param((1, 2, 6, 5), 3, 2, 1, False, id="overlap3s2-pad1"),
    pytest.param((1, 2, 6, 6), 3, 2, 1, True, id="overlap3s2-pad1-ceil"),
    pytest.param((1, 1, 5, 5), 2, 2, 1, True, id="ceil-drops-window-starting-in-padding"),
    pytest.param((2, 1, 5, 7), (3, 2), (2, 1), (1, 0), False, id="kernel3x2-stride2x1-pad1x0"),
    pytest.param((1, 3, 9, 9), 3, 2, 0, False, id="batch1-9x9"),
    pytest.param((2, 2, 8, 7), 2, 3, 0, False, id="stride3-gt-kernel2"),
    pytest.param((1, 2, 5, 4), 1, 2, 0, False, id="kernel1-stride2"),
    pytest.param((1, 2, 18, 17), (17, 16), 1, 0, False, id="kernel17x16-272-offsets-int32-argmax"),
]


@pytest.fixture(params=["plain", "phase_planes"])
def pool_algorithm(request):
    """Each max-pool test runs both CPU algorithms (``F.pool_algorithm``; float32 CuPy takes the kernels)."""
    with F.pool_algorithm(request.param):
        yield request.param


def _pool_out(size, k, s, p, ceil):
    if ceil:
        o = math.ceil((size + 2 * p - k) / s) + 1
        return o - 1 if (o - 1) * s >= size + p else o
    return (size + 2 * p - k) // s + 1


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", POOL_CASES)
def test_max_pool2d_forward_and_argmax(pool_algorithm, device, dtype, kind, shape, kernel, stride, padding, ceil_mode):
    """Values match the naive loops, and the gradient lands exactly on each window's argmax."""
    x = tie_free(*shape)
    y_ref, arg = cached(("pool", shape, kernel, stride, padding, ceil_mode),
                        lambda: reference.max_pool2d(x, kernel, stride, padding, ceil_mode))
    _assert_pool_matches(x, y_ref, arg, device, kind, dtype, kernel, stride, padding, ceil_mode)


def _assert_pool_matches(x, y_ref, arg, device, kind, dtype, *pool_args):
    """F.max_pool2d(x, *pool_args) equals y_ref exactly, and a random output gradient lands on the
    reference's argmax (flat indices into each (H, W) plane), summed where windows share it."""
    t = make(x, device, kind, dtype, requires_grad=True)
    y = F.max_pool2d(t, *pool_args)
    assert y.shape == y_ref.shape and y.dtype == dtype
    assert_close(y, y_ref, rtol=0, atol=0)
    g = randn(*y_ref.shape, seed=5)
    y.backward(g.astype(dtype))
    N, C, H, W = x.shape
    expected = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            np.add.at(expected[n, c], arg[n, c].ravel(), g[n, c].ravel())
    assert_close(t.grad, expected.reshape(x.shape), **TOL[dtype])


def test_max_pool2d_output_sizes(pool_algorithm):
    """The output-size rule, in particular ceil_mode (Caffe's rounding) against floor."""
    for H, k, s, p in [(6, 3, 2, 0), (7, 3, 2, 0), (5, 2, 2, 1), (6, 3, 2, 1), (55, 3, 2, 0), (13, 3, 2, 0)]:
        for ceil in (False, True):
            y = F.max_pool2d(Tensor(tie_free(1, 1, H, H)), k, s, p, ceil)
            assert y.shape[2:] == (_pool_out(H, k, s, p, ceil),) * 2, (H, k, s, p, ceil)
    assert F.max_pool2d(Tensor(tie_free(1, 1, 6, 6)), 3, 2, ceil_mode=True).shape[2:] == (3, 3)
    assert F.max_pool2d(Tensor(tie_free(1, 1, 6, 6)), 3, 2, ceil_mode=False).shape[2:] == (2, 2)


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", POOL_CASES)
def test_max_pool2d_gradcheck_tie_free(pool_algorithm, device, shape, kernel, stride, padding, ceil_mode):
    check_grads(lambda x: F.max_pool2d(x, kernel, stride, padding, ceil_mode),
                [make(tie_free(*shape), kind="strided")], device)


def test_max_pool2d_tie_rule_first_maximum_in_scan_order(pool_algorithm, device):
    """All equal: every window's gradient goes to its top-left element (the documented rule)."""
    x = make(np.ones((1, 1, 4, 4)), device, requires_grad=True)
    F.max_pool2d(x, 2, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    assert_close(x.grad[0, 0], expected, rtol=0, atol=0)


def test_max_pool2d_kernel_of_more_than_256_offsets(pool_algorithm, device):
    """Increasing values put every window's maximum at its last offset, 271 of a 17x16 kernel: an
    offset code of 8 bits (enough up to 16x16) would wrap it to 15 and route the gradient there."""
    x = make(np.arange(2 * 18 * 17, dtype=np.float64).reshape(1, 2, 18, 17), device, requires_grad=True)
    F.max_pool2d(x, (17, 16), 1).sum().backward()
    expected = np.zeros((1, 2, 18, 17))
    expected[:, :, 16:, 15:] = 1                       # the bottom-right pixel of each of the 2x2 windows
    assert_close(x.grad, expected, rtol=0, atol=0)


def test_max_pool2d_empty_batch_or_channels(pool_algorithm, device):
    for shape in ((0, 3, 7, 7), (2, 0, 7, 7)):
        x = make(np.zeros(shape), device, requires_grad=True)
        y = F.max_pool2d(x, 3, 2)
        assert y.shape == shape[:2] + (3, 3)
        y.sum().backward()
        assert x.grad.shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", POOL_CASES)
def test_max_pool2d_ties_go_to_the_first_maximum(pool_algorithm, device, dtype, shape, kernel, stride, padding, ceil_mode):
    """Small integers, so most windows hold their maximum more than once (also across rows and
    in the overlaps): each window's gradient goes to the first maximum in row-major order, as the
    reference's strict ">" scan; a later equal value (last-max rule) or a column-major scan fails."""
    x = np.random.default_rng(7).integers(-2, 3, size=shape).astype(np.float64)
    y_ref, arg = reference.max_pool2d(x, kernel, stride, padding, ceil_mode)
    _assert_pool_matches(x, y_ref, arg, device, "strided", dtype, kernel, stride, padding, ceil_mode)


# ============================================================================= local_response_norm
# shape, size, alpha, beta, k
LRN_CASES = [
    pytest.param((2, 7, 3, 4), 5, 1.0, 0.75, 2.0, id="size5-alpha1-k2"),
    pytest.param((1, 6, 3, 3), 3, 1.0, 0.75, 1.0, id="size3-batch1"),
    pytest.param((2, 6, 2, 3), 4, 1.0, 0.75, 1.0, id="size4-even"),
    pytest.param((2, 5, 3, 2), 2, 1.0, 0.5, 1.0, id="size2-even-beta0.5"),
    pytest.param((2, 4, 3, 3), 1, 1.0, 0.75, 1.0, id="size1"),
    pytest.param((2, 4, 2, 3), 7, 1.0, 0.75, 1.0, id="size7-gt-channels4"),
    pytest.param((3, 6, 5), 5, 1.0, 0.75, 2.0, id="3d-input-N-C-L"),
    pytest.param((2, 8, 2, 2), 5, 5e-4, 0.75, 2.0, id="paper-params-alpha5e-4"),
]


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES)
def test_local_response_norm_forward(device, dtype, kind, shape, size, alpha, beta, k):
    x = randn(*shape, scale=1.5)
    expected = reference.local_response_norm(x, size, alpha, beta, k)
    y = F.local_response_norm(make(x, device, kind, dtype), size, alpha, beta, k)
    assert y.shape == shape and y.dtype == dtype
    assert_close(y, expected, **TOL[dtype])


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES)
def test_local_response_norm_gradcheck(device, shape, size, alpha, beta, k):
    check_grads(lambda x: F.local_response_norm(x, size, alpha, beta, k),
                [make(randn(*shape, scale=1.5), kind="strided")], device)


def test_local_response_norm_window_is_n_channels_even_size():
    """Even size 2: channel c sums c-1 and c (size//2 before, (size-1)//2 after), divided by 2."""
    x = np.zeros((1, 3, 1, 1))
    x[0, :, 0, 0] = [1.0, 2.0, 3.0]
    y = F.local_response_norm(Tensor(x), size=2, alpha=1.0, beta=1.0, k=0.0).numpy()[0, :, 0, 0]
    sums = np.array([1.0, 1.0 + 4.0, 4.0 + 9.0])
    assert_close(y, x[0, :, 0, 0] / (sums / 2), rtol=1e-12)


# ============================================================================= adaptive_avg_pool2d
ADAPTIVE_CASES = [
    pytest.param((2, 3, 6, 4), (3, 2), id="divisible-6x4-to-3x2"),
    pytest.param((1, 2, 7, 7), 3, id="7-to-3-overlapping-bins-batch1"),
    pytest.param((2, 2, 5, 5), 6, id="5-to-6-upsampling"),
    pytest.param((2, 3, 7, 5), (3, 2), id="7x5-to-3x2"),
    pytest.param((1, 4, 6, 6), 1, id="global-average"),
    pytest.param((2, 2, 4, 6), (4, 6), id="identity-size"),
]


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_forward(device, dtype, kind, shape, out):
    x = randn(*shape)
    expected = reference.adaptive_avg_pool2d(x, out)
    y = F.adaptive_avg_pool2d(make(x, device, kind, dtype), out)
    assert y.shape == expected.shape and y.dtype == dtype
    assert_close(y, expected, **TOL[dtype])


@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_gradcheck(device, shape, out):
    check_grads(lambda x: F.adaptive_avg_pool2d(x, out), [make(randn(*shape), kind="strided")], device)


# ============================================================================= dropout
def test_dropout_is_inverted_and_preserves_the_mean(device):
    p = 0.3
    x = make(np.ones(200_000, np.float32), device)
    y = F.dropout(x, p).numpy()
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)  # kept units scaled by 1/(1-p)
    assert abs(y.mean() - 1.0) < 0.01                            # so the expectation is unchanged
    assert y.dtype == np.float32


def test_dropout_gradient_uses_the_same_mask(device):
    x = make(randn(50, 40), device, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    mask = (y.numpy() != 0)
    assert_close(x.grad, mask * 2.0, rtol=0, atol=0)


def test_dropout_identity_when_not_training(device):
    x = make(randn(4, 5), device, requires_grad=True)
    y = F.dropout(x, 0.5, training=False)
    assert_close(y, x.numpy(), rtol=0, atol=0)
    y.sum().backward()
    assert_close(x.grad, np.ones((4, 5)), rtol=0, atol=0)


def test_dropout_p0_identity_and_p1_zeros(device):
    x = make(randn(4, 5), device, requires_grad=True)
    assert_close(F.dropout(x, 0.0), x.numpy(), rtol=0, atol=0)
    y = F.dropout(x, 1.0)
    assert_close(y, np.zeros((4, 5)), rtol=0, atol=0)
    y.sum().backward()
    assert np.isfinite(x.grad if device == "cpu" else x.grad.get()).all()
    assert_close(x.grad, np.zeros((4, 5)), rtol=0, atol=0)


def test_dropout_reproducible_under_manual_seed(device):
    x = make(np.ones((30, 30)), device)
    minialex.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    minialex.manual_seed(123)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # the generator moves on between calls


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_gradcheck_with_fixed_mask(device, p):
    def fn(x):
        minialex.manual_seed(7)  # the same mask on every evaluation
        return F.dropout(x, p)
    check_grads(fn, [make(randn(4, 6), kind="strided")], device)


# ============================================================================= softmax, log_softmax
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_forward_and_gradcheck(device, op, dim):
    x = randn(3, 4, 5)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    p = e / e.sum(axis=dim, keepdims=True)
    y = getattr(F, op)(make(x, device, "transposed"), dim)
    assert_close(y, p if op == "softmax" else np.log(p), **TOL[np.float64])
    check_grads(lambda t: getattr(F, op)(t, dim), [make(x, kind="strided")], device)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_stable_for_large_logits(device, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4, -1e4]])
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = F.log_softmax(make(x, device, dtype=dtype), 1).numpy()
    s = F.softmax(make(x, device, dtype=dtype), 1).numpy()
    assert np.isfinite(y).all() and np.isfinite(s).all()
    np.testing.assert_allclose(y, logp, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s, np.exp(logp), rtol=1e-6, atol=1e-7)


# ============================================================================= cross_entropy
def _ce_per_sample(z, t):
    return np.array([reference.cross_entropy(z[n:n + 1], t[n:n + 1]) for n in range(len(t))])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [pytest.param((4, 5), id="batch4"), pytest.param((1, 3), id="batch1")])
def test_cross_entropy_forward_and_gradcheck(device, shape, reduction):
    z = randn(*shape, scale=2.0)
    t = np.arange(shape[0]) % shape[1]
    per = _ce_per_sample(z, t)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    assert_close(reference.cross_entropy(z, t), per.mean(), rtol=1e-12)
    loss = F.cross_entropy(make(z, device, "transposed"), Tensor(t, device=device), reduction)
    assert loss.shape == (() if reduction != "none" else (shape[0],))
    assert_close(loss, expected, **TOL[np.float64])
    check_grads(lambda z: F.cross_entropy(z, t, reduction), [make(z, kind="strided")], device)


def test_cross_entropy_gradient_is_softmax_minus_onehot(device):
    z, t = randn(3, 4), np.array([0, 3, 1])
    logits = make(z, device, requires_grad=True)
    F.cross_entropy(logits, t).backward()
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[np.arange(3), t] -= 1
    assert_close(logits.grad, p / 3, **TOL[np.float64])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_stable_for_logits_of_magnitude_1e4(device, dtype):
    z = np.array([[1e4, -1e4, 5e3], [-1e4, 1e4, 1e4], [3e3, -2e3, 1e4]])
    t = np.array([2, 1, 0])
    expected = reference.cross_entropy(z, t)  # float64 log-sum-exp: 5000 + log(1 + e^-15000) ... ~ 5000
    logits = make(z, device, dtype=dtype, requires_grad=True)
    loss = F.cross_entropy(logits, t)
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    g = logits.grad if device == "cpu" else logits.grad.get()
    assert np.isfinite(g).all()


# ============================================================================= comparisons with PyTorch
# Every op of minialex.functional against torch's, forward and gradients in float64 (torch_oracle.py);
# skipped where torch is not installed.
def _torch():
    return torch_or_skip()


@pytest.mark.parametrize("xshape,wshape,stride,padding,groups,bias", CONV_CASES)
def test_conv2d_matches_torch(device, xshape, wshape, stride, padding, groups, bias):
    torch = _torch()
    x, w, b = _conv_inputs(xshape, wshape, groups, bias)
    arrays = [x, w] if b is None else [x, w, b]
    compare_with_torch(lambda x, w, b=None: torch.nn.functional.conv2d(x, w, b, stride, padding, 1, groups),
                       lambda x, w, b=None: F.conv2d(x, w, b, stride, padding, groups), arrays, device)


@pytest.mark.parametrize("xshape,out_features,bias", LINEAR_CASES)
def test_linear_matches_torch(device, xshape, out_features, bias):
    torch = _torch()
    arrays = [randn(*xshape), randn(out_features, xshape[-1], seed=1)] + ([randn(out_features, seed=2)] if bias else [])
    compare_with_torch(lambda *t: torch.nn.functional.linear(*t), lambda *t: F.linear(*t), arrays, device)


def test_relu_matches_torch(device):
    torch = _torch()
    compare_with_torch(torch.relu, F.relu, [away_from_kink(2, 3, 4, 5)], device)


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil_mode", POOL_CASES)
def test_max_pool2d_matches_torch(pool_algorithm, device, shape, kernel, stride, padding, ceil_mode):
    torch = _torch()
    compare_with_torch(lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode),
                       lambda x: F.max_pool2d(x, kernel, stride, padding, ceil_mode), [tie_free(*shape)], device)


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES)
def test_local_response_norm_matches_torch(device, shape, size, alpha, beta, k):
    torch = _torch()
    compare_with_torch(lambda x: torch.nn.functional.local_response_norm(x, size, alpha, beta, k),
                       lambda x: F.local_response_norm(x, size, alpha, beta, k), [randn(*shape, scale=1.5)], device)


@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_matches_torch(device, shape, out):
    torch = _torch()
    compare_with_torch(lambda x: torch.nn.functional.adaptive_avg_pool2d(x, out),
                       lambda x: F.adaptive_avg_pool2d(x, out), [randn(*shape)], device)


@pytest.mark.parametrize("p,training", [(0.5, False), (0.0, True), (1.0, True)], ids=["eval", "p0", "p1"])
def test_dropout_matches_torch_where_no_random_mask_is_drawn(device, p, training):
    """The masks come from different generators, so only the cases without one compare (the
    mask's statistics and scaling are tested above)."""
    torch = _torch()
    compare_with_torch(lambda x: torch.nn.functional.dropout(x, p, training),
                       lambda x: F.dropout(x, p, training), [randn(4, 5)], device)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_matches_torch(device, op, dim):
    torch = _torch()
    compare_with_torch(lambda x: getattr(torch, op)(x, dim), lambda x: getattr(F, op)(x, dim),
                       [randn(3, 4, 5, scale=3.0)], device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(device, reduction):
    torch = _torch()
    t = np.array([0, 4, 2, 4])
    z = randn(4, 5, scale=3.0)
    z[1] *= 1e4  # large logits too
    compare_with_torch(lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(t), reduction=reduction),
                       lambda z: F.cross_entropy(z, t, reduction), [z], device)


# (torch's function, given torch; ours) on one input of shape (2, 3, 4, 5)
ONE_INPUT_OPS = [
    pytest.param(lambda torch: lambda x: x.reshape(6, -1), lambda x: F.reshape(x, 6, -1), id="reshape"),
    pytest.param(lambda torch: lambda x: torch.flatten(x, 1), lambda x: F.flatten(x, 1), id="flatten"),
    pytest.param(lambda torch: lambda x: torch.flatten(x, 1, 2), lambda x: F.flatten(x, 1, 2), id="flatten-1-2"),
    pytest.param(lambda torch: lambda x: x.permute(2, 0, 3, 1), lambda x: F.permute(x, (2, 0, 3, 1)), id="permute"),
    pytest.param(lambda torch: lambda x: x.transpose(1, 3), lambda x: F.transpose(x, 1, 3), id="transpose"),
    pytest.param(lambda torch: lambda x: x[:, 1:, ::2, -1],
                 lambda x: F.getitem(x, (slice(None), slice(1, None), slice(None, None, 2), -1)), id="getitem-slices"),
    pytest.param(lambda torch: lambda x: x[torch.tensor([0, 1, 0])], lambda x: F.getitem(x, np.array([0, 1, 0])),
                 id="getitem-repeated-index"),
    pytest.param(lambda torch: lambda x: x.sum(), lambda x: F.sum(x), id="sum-all"),
    pytest.param(lambda torch: lambda x: x.sum((1, 3), keepdim=True), lambda x: F.sum(x, (1, 3), keepdim=True),
                 id="sum-dims-keepdim"),
    pytest.param(lambda torch: lambda x: x.mean(), lambda x: F.mean(x), id="mean-all"),
    pytest.param(lambda torch: lambda x: x.mean(2), lambda x: F.mean(x, 2), id="mean-dim"),
    pytest.param(lambda torch: torch.neg, F.neg, id="neg"),
    pytest.param(lambda torch: lambda x: x ** 3, lambda x: F.pow(x, 3), id="pow-3"),
    pytest.param(lambda torch: lambda x: x ** -1.5, lambda x: F.pow(x, -1.5), id="pow-negative-fraction"),
    pytest.param(lambda torch: torch.exp, F.exp, id="exp"),
    pytest.param(lambda torch: torch.log, F.log, id="log"),
]


@pytest.mark.parametrize("torch_op,our_op", ONE_INPUT_OPS)
def test_shape_reduce_and_elementwise_ops_match_torch(device, torch_op, our_op):
    torch = _torch()
    x = np.abs(randn(2, 3, 4, 5)) + 0.5            # positive: log and the fractional power are defined
    compare_with_torch(torch_op(torch), our_op, [x], device)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("a_shape,b_shape", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1))],
                         ids=["same", "row-vector", "outer", "both-broadcast"])
def test_binary_ops_match_torch_with_broadcasting(device, op, a_shape, b_shape):
    torch = _torch()
    a, b = randn(*a_shape), np.abs(randn(*b_shape, seed=1)) + 0.5   # b away from 0 for div
    compare_with_torch(getattr(torch, op), getattr(F, op), [a, b], device)


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
                                             ((2, 1, 3, 4), (5, 4, 2))],
                         ids=["2d", "vector-matrix", "matrix-vector", "batched-left", "broadcast-batches"])
def test_matmul_matches_torch(device, a_shape, b_shape):
    torch = _torch()
    compare_with_torch(torch.matmul, F.matmul, [randn(*a_shape), randn(*b_shape, seed=1)], device)


def test_local_response_norm_empty_batch():
    x = minialex.tensor(np.zeros((0, 4, 3, 3), np.float32), requires_grad=True)
    y = F.local_response_norm(x, 3)
    assert y.shape == (0, 4, 3, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 3, 3)
