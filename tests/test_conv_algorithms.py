"""conv2d's fast routes against the plain ones: Winograd F(2x2, 3x3) (``functional/winograd.py``) and the
data gradient computed as a convolution (``conv2d._data_grad``), against ``minialex.reference.conv2d``,
against im2col, and by float64 gradient checks, with the algorithm forced by ``F.conv_algorithm``."""
import sys

import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import reference
from minialex.functional import winograd
from minialex.functional.im2col import col2im as module_col2im

from conftest import assert_close, check_grads, make, randn

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture
def winograd_calls(monkeypatch):
    """Counts the forward passes that went through winograd.conv2d."""
    calls = []
    original = winograd.conv2d

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)
    monkeypatch.setattr(winograd, "conv2d", counting)
    return calls


# ----------------------------------------------------------------------------- the transforms
def test_filter_transform_is_G_g_Gt():
    g = randn(3, 3, seed=1)
    U = winograd.transform_filters(g.reshape(1, 1, 3, 3), 1).reshape(4, 4)
    Gm = np.array(winograd.G)
    assert_close(U, Gm @ g @ Gm.T, rtol=1e-12, atol=1e-12)


def test_input_transform_is_Bt_d_B():
    d = randn(4, 4, seed=2)
    V = winograd.transform_inputs(d.reshape(1, 1, 4, 4), (0, 0), 1, 1).reshape(4, 4)
    Bt = np.array(winograd.B_T)
    assert_close(V, Bt @ d @ Bt.T, rtol=1e-12, atol=1e-12)


def test_output_transform_is_At_M_A():
    M = randn(4, 4, seed=3)
    y = winograd.transform_outputs(M.reshape(16, 1, 1, 1), 1, 2, 2, 1, 1).reshape(2, 2)
    At = np.array(winograd.A_T)
    assert_close(y, At @ M @ At.T, rtol=1e-12, atol=1e-12)


def test_the_three_transforms_make_a_3x3_correlation():
    """One tile, one channel: A^T [(G g G^T) * (B^T d B)] A is the 2x2 'valid' correlation of d with g."""
    d, g = randn(4, 4, seed=4), randn(3, 3, seed=5)
    Bt, Gm, At = np.array(winograd.B_T), np.array(winograd.G), np.array(winograd.A_T)
    y = At @ ((Gm @ g @ Gm.T) * (Bt @ d @ Bt.T)) @ At.T
    expected = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
    assert_close(y, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Winograd forward and gradients
# (N, C, H, W), O, padding, groups: even and odd output sizes (overhanging tiles), padding 0/1/2, groups 1-3
WINOGRAD_CASES = [
    pytest.param((2, 3, 5, 6), 4, 0, 1, id="pad0-OH3xOW4"),
    pytest.param((1, 4, 7, 7), 6, 1, 2, id="pad1-odd-groups2-batch1"),
    pytest.param((2, 3, 4, 9), 3, 2, 3, id="pad2-groups3-nonsquare"),
    pytest.param((3, 2, 3, 3), 2, 1, 1, id="3x3-input-one-tile-row-overhangs"),
    pytest.param((2, 4, 6, 5), 2, (1, 2), 1, id="padding-1x2"),
]


def _inputs(xshape, O, groups, seed=0, k=3):
    kH, kW = (k, k) if isinstance(k, int) else k
    x = randn(*xshape, seed=seed)
    w = randn(O, xshape[1] // groups, kH, kW, seed=seed + 1, scale=0.5)
    b = randn(O, seed=seed + 2)
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["contiguous", "transposed"])
@pytest.mark.parametrize("xshape,O,padding,groups", WINOGRAD_CASES)
def test_winograd_forward_matches_reference(xshape, O, padding, groups, kind, dtype, winograd_calls):
    x, w, b = _inputs(xshape, O, groups)
    expected = reference.conv2d(x, w, b, 1, padding, groups)
    with F.conv_algorithm("winograd"):
        y = F.conv2d(make(x, kind=kind, dtype=dtype), make(w, kind=kind, dtype=dtype), make(b, dtype=dtype),
                     1, padding, groups)
    assert winograd_calls == [w.shape]
    assert y.dtype == dtype and y.shape == expected.shape
    assert_close(y, expected, **TOL[dtype])


@pytest.mark.parametrize("xshape,O,padding,groups", WINOGRAD_CASES)
def test_winograd_gradcheck(xshape, O, padding, groups, winograd_calls):
    """Weight gradient from Winograd's adjoint transforms; data gradient as a 3x3 convolution, which
    goes through Winograd again (padding 0 -> 2, 1 -> 1, 2 -> 0)."""
    x, w, b = _inputs(xshape, O, groups)
    with F.conv_algorithm("winograd"):
        check_grads(lambda x, w, b: F.conv2d(x, w, b, 1, padding, groups),
                    [make(x, kind="strided"), make(w), make(b)])
    assert w.shape in winograd_calls                                       # the forward
    assert (xshape[1], O // groups, 3, 3) in winograd_calls                # the data gradient, flipped filters


def test_winograd_agrees_with_im2col_on_alexnet_conv4_in_float32():
    """conv4's shape (384 -> 384, groups 2, 13x13) at batch 2: the transforms' rounding stays ~1e-6."""
    x, w, b = _inputs((2, 384, 13, 13), 384, 2)
    x, w, b = (make(a, dtype=np.float32, requires_grad=True) for a in (x, w * 0.05, b))
    results = {}
    for algorithm in ("im2col", "winograd"):
        with F.conv_algorithm(algorithm):
            x.grad = w.grad = b.grad = None
            y = F.conv2d(x, w, b, 1, 1, 2)
            g = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
            y.backward(g)
            results[algorithm] = (y.numpy(), x.grad.copy(), w.grad.copy())
    for name, a, b_ in zip(("y", "dx", "dw"), results["winograd"], results["im2col"]):
        rel = np.abs(a - b_).max() / np.abs(b_).max()
        assert rel < 1e-5, f"{name}: Winograd and im2col differ by {rel:.2e} (relative to the largest value)"


# ----------------------------------------------------------------------------- the data gradient as a convolution
# stride 1, 3x3: with "winograd" the data gradient is a convolution (of padding 2 - p); "im2col" forces col2im
DATA_GRAD_CASES = [
    pytest.param((2, 4, 9, 8), 4, 2, 2, id="pad2-groups2-becomes-pad0"),
    pytest.param((1, 3, 6, 7), 2, (1, 0), 1, id="pad1x0-becomes-pad1x2"),
]


@pytest.fixture
def col2im_calls(monkeypatch):
    """Counts the calls of col2im from conv2d.py."""
    module = sys.modules["minialex.functional.conv2d"]     # F.conv2d is the function; this is its file
    calls = []
    monkeypatch.setattr(module, "col2im", lambda *args: calls.append(args[0].shape) or module_col2im(*args))
    return calls


@pytest.mark.parametrize("xshape,O,padding,groups", DATA_GRAD_CASES)
def test_data_gradient_as_convolution_matches_col2im(xshape, O, padding, groups, col2im_calls):
    x, w, _ = _inputs(xshape, O, groups, seed=10)
    g = randn(*reference.conv2d(x, w, None, 1, padding, groups).shape, seed=12)
    grads = {}
    for algorithm in ("winograd", "im2col"):
        with F.conv_algorithm(algorithm):
            xt, wt = make(x, requires_grad=True), make(w, requires_grad=True)
            F.conv2d(xt, wt, None, 1, padding, groups).backward(g)
            grads[algorithm] = (xt.grad, wt.grad)
    assert len(col2im_calls) == 1                                          # only "im2col" took col2im
    assert_close(grads["winograd"][0], grads["im2col"][0], rtol=1e-12, atol=1e-12)
    assert_close(grads["winograd"][1], grads["im2col"][1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xshape,O,padding,groups", DATA_GRAD_CASES)
def test_data_gradient_as_convolution_gradcheck(xshape, O, padding, groups):
    x, w, _ = _inputs(xshape, O, groups, seed=10)
    with F.conv_algorithm("winograd"):
        check_grads(lambda x, w: F.conv2d(x, w, None, 1, padding, groups), [make(x), make(w)])


def test_padding_not_below_the_kernel_keeps_col2im(col2im_calls):
    """Padding 3 >= kernel 3 would need a negative padding for the flipped convolution: col2im instead."""
    x, w, _ = _inputs((2, 3, 5, 5), 2, 1, seed=10)
    with F.conv_algorithm("winograd"):
        check_grads(lambda x, w: F.conv2d(x, w, None, 1, 3, 1), [make(x), make(w)])
    assert col2im_calls and all(shape == (2, 3, 3, 3, 9, 9) for shape in col2im_calls)


def test_data_gradient_of_a_5x5_layer_stays_on_col2im(col2im_calls):
    """The convolution route would im2col the padded output gradient, O/C times bigger than col2im's
    columns; without Winograd to take it, conv2's data gradient keeps col2im."""
    x, w = make(randn(2, 8, 9, 9), requires_grad=True), make(randn(8, 4, 5, 5))
    with F.conv_algorithm("winograd"):
        F.conv2d(x, w, None, 1, 2, 2).sum().backward()
    assert col2im_calls == [(2, 8, 5, 5, 9, 9)]


# ----------------------------------------------------------------------------- choosing
def test_auto_takes_winograd_for_alexnets_conv3_to_conv5_from_256_tiles(winograd_calls):
    """13x13 outputs are 7x7 = 49 tiles of 2x2 an image: batch 5 has 245 < WINOGRAD_MIN_TILES, batch 6 294."""
    model = minialex.models.alexnet("paper")
    with minialex.no_grad(), F.conv_algorithm("auto"):
        model(minialex.tensor(np.zeros((5, 3, 227, 227), dtype=np.float32)))
        assert winograd_calls == []
        model(minialex.tensor(np.zeros((6, 3, 227, 227), dtype=np.float32)))
    assert winograd_calls == [(384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3)]


def test_auto_keeps_im2col_for_few_channels_and_stride_2(winograd_calls):
    with F.conv_algorithm("auto"):
        few = F.conv2d(make(randn(16, 3, 8, 8)), make(randn(32, 3, 3, 3)), padding=1)       # 256 tiles, 3 in
        few_out = F.conv2d(make(randn(16, 32, 8, 8)), make(randn(8, 32, 3, 3)), padding=1)  # 8 out
        strided = F.conv2d(make(randn(64, 32, 8, 8)), make(randn(32, 32, 3, 3)), stride=2, padding=1)
        assert few.shape == (16, 32, 8, 8) and few_out.shape == (16, 8, 8, 8) and strided.shape == (64, 32, 4, 4)
        assert winograd_calls == []
        with F.conv_algorithm("im2col"):
            F.conv2d(make(randn(16, 32, 8, 8)), make(randn(32, 32, 3, 3)), padding=1)   # 256 tiles
        assert winograd_calls == []
        F.conv2d(make(randn(16, 32, 8, 8)), make(randn(32, 32, 3, 3)), padding=1)
    assert winograd_calls == [(32, 32, 3, 3)]


def test_the_backward_keeps_the_forwards_algorithm(winograd_calls):
    """A graph built inside ``conv_algorithm("im2col")`` differentiates with im2col/col2im even when
    backward() runs outside the block: bit for bit the gradients of a backward inside it."""
    x, w, _ = _inputs((16, 32, 8, 8), 32, 1)
    grads = []
    for inside in (True, False):
        xt, wt = make(x, dtype=np.float32, requires_grad=True), make(w, dtype=np.float32, requires_grad=True)
        with F.conv_algorithm("im2col"):
            y = F.conv2d(xt, wt, None, 1, 1, 1).sum()
            if inside:
                y.backward()
        if not inside:
            with F.conv_algorithm("winograd"):
                y.backward()
        grads.append((xt.grad, wt.grad))
    assert winograd_calls == []
    assert np.array_equal(grads[0][0], grads[1][0]) and np.array_equal(grads[0][1], grads[1][1])


def test_the_setting_belongs_to_the_thread():
    import threading
    module = sys.modules["minialex.functional.algorithms"]
    seen, entered, release = {}, threading.Event(), threading.Event()

    def other():
        with F.conv_algorithm("winograd"):
            entered.set()
            release.wait(5)
            seen["other"] = module.current_algorithm()
    thread = threading.Thread(target=other)
    with F.conv_algorithm("im2col"):
        thread.start()
        entered.wait(5)
        seen["main"] = module.current_algorithm()
        release.set()
        thread.join(5)
    assert seen == {"main": "im2col", "other": "winograd"}


def test_unknown_algorithm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown algorithm 'fast'; choose one of auto, im2col, winograd"):
        with F.conv_algorithm("fast"):
            pass


def test_bad_environment_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("MINIALEX_CONV_ALGORITHM", "Winograd")
    with pytest.raises(ValueError, match="MINIALEX_CONV_ALGORITHM='Winograd' is not one of auto, im2col, winograd"):
        F.conv2d(make(randn(1, 1, 4, 4)), make(randn(1, 1, 3, 3)))


# ----------------------------------------------------------------------------- col2im with the batch last
# "auto" takes conv2d._data_grad_batch_last for stride-1 layers without Winograd (5x5, or few channels)
BATCH_LAST_CASES = [
    pytest.param((3, 4, 7, 6), 6, 5, 2, 2, id="5x5-pad2-groups2"),
    pytest.param((2, 3, 6, 7), 5, 5, (1, 0), 1, id="5x5-pad1x0"),
    pytest.param((2, 6, 5, 5), 4, 3, 1, 2, id="3x3-few-channels-groups2"),
    pytest.param((1, 5, 8, 6), 3, (2, 4), (0, 1), 1, id="2x4-kernel-batch1"),
    pytest.param((2, 3, 5, 5), 2, 3, 3, 1, id="3x3-padding3-not-below-the-kernel"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape,O,k,padding,groups", BATCH_LAST_CASES)
def test_batch_last_data_gradient_matches_col2im_and_the_reference(xshape, O, k, padding, groups, dtype,
                                                                   col2im_calls, monkeypatch):
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")               # pieces per group: halves of a group too
    x, w, _ = _inputs(xshape, O, groups, seed=20, k=k)
    g = randn(*reference.conv2d(x, w, None, 1, padding, groups).shape, seed=21)
    grads = {}
    for algorithm in ("auto", "im2col"):
        with F.conv_algorithm(algorithm):
            xt, wt = make(x, requires_grad=True, dtype=dtype), make(w, requires_grad=True, dtype=dtype)
            F.conv2d(xt, wt, None, 1, padding, groups).backward(g.astype(dtype))
            grads[algorithm] = xt.grad
    assert len(col2im_calls) == 1                                          # only "im2col" took col2im
    assert grads["auto"].dtype == dtype
    assert_close(grads["auto"], grads["im2col"], **TOL[dtype])
    # and against float64 finite differences of the plain reference: d<g, conv(x)>/dx
    eps, flat = 1e-6, x.reshape(-1)
    for idx in np.random.default_rng(22).choice(flat.size, 6, replace=False):
        xp_, xm = flat.copy(), flat.copy()
        xp_[idx] += eps
        xm[idx] -= eps
        num = np.sum(g * (reference.conv2d(xp_.reshape(x.shape), w, None, 1, padding, groups)
                          - reference.conv2d(xm.reshape(x.shape), w, None, 1, padding, groups))) / (2 * eps)
        assert_close(grads["auto"].reshape(-1)[idx], num, **(TOL[dtype] if dtype == np.float32 else
                                                             dict(rtol=1e-6, atol=1e-8)))


@pytest.mark.parametrize("xshape,O,k,padding,groups", BATCH_LAST_CASES[:2])
def test_batch_last_data_gradient_gradcheck(xshape, O, k, padding, groups):
    x, w, _ = _inputs(xshape, O, groups, seed=23, k=k)
    with F.conv_algorithm("auto"):
        check_grads(lambda a, b: F.conv2d(a, b, None, 1, padding, groups),
                    [make(x, requires_grad=True), make(w, requires_grad=True)])


# ----------------------------------------------------------------------------- the batch in pieces
PIECE_CASES = [
    pytest.param((5, 4, 9, 9), 6, 5, 1, 2, 2, id="5x5-pad2-groups2-N5"),       # pieces of 2, 2, 1 images
    pytest.param((4, 16, 6, 6), 16, 3, 1, 1, 1, id="3x3-winograd-sized"),
    pytest.param((3, 3, 11, 11), 4, 3, 2, 0, 1, id="3x3-stride2"),
    pytest.param((1, 2, 5, 5), 3, 3, 1, 1, 1, id="batch1"),
]


@pytest.fixture
def in_pieces(monkeypatch):
    """conv2d runs the batch as pieces of 2 images on 2 threads (what 1 BLAS thread gives on any machine)."""
    module = sys.modules["minialex.functional.conv2d"]
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")
    monkeypatch.setattr(module, "images_per_piece", lambda x: 2)


@pytest.mark.parametrize("algorithm", ["auto", "im2col", "winograd"])
@pytest.mark.parametrize("xshape,O,k,stride,padding,groups", PIECE_CASES)
def test_conv2d_in_pieces_equals_the_whole_batch_and_the_reference(xshape, O, k, stride, padding, groups,
                                                                    algorithm, monkeypatch):
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")
    x, w, b = _inputs(xshape, O, groups, seed=30, k=k)
    g = randn(*reference.conv2d(x, w, b, stride, padding, groups).shape, seed=31)
    results = {}
    for pieces in (False, True):
        if pieces:
            monkeypatch.setattr(sys.modules["minialex.functional.conv2d"], "images_per_piece", lambda a: 2)
        with F.conv_algorithm(algorithm):
            xt, wt, bt = (make(a, requires_grad=True, dtype=np.float64) for a in (x, w, b))
            y = F.conv2d(xt, wt, bt, stride, padding, groups)
            y.backward(g)
        results[pieces] = (y.data, xt.grad, wt.grad, bt.grad)
    for whole, piecewise, name in zip(results[False], results[True], ("y", "dx", "dw", "db")):
        assert_close(piecewise, whole, rtol=1e-12, atol=1e-12, msg=name)
    assert_close(results[True][0], reference.conv2d(x, w, b, stride, padding, groups), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("xshape,O,k,stride,padding,groups", PIECE_CASES[:2])
def test_conv2d_in_pieces_gradcheck(xshape, O, k, stride, padding, groups, in_pieces):
    x, w, b = _inputs(xshape, O, groups, seed=32, k=k)
    check_grads(lambda a, ww, bb: F.conv2d(a, ww, bb, stride, padding, groups),
                [make(a, requires_grad=True) for a in (x, w, b)])


def test_conv2d_in_pieces_only_weight_or_only_data_gradient(in_pieces):
    x, w, b = _inputs((5, 4, 7, 7), 6, 2, seed=33, k=5)
    ref_y = reference.conv2d(x, w, b, 1, 2, 2)
    for needs in ("x", "w"):
        xt, wt = make(x, requires_grad=needs == "x"), make(w, requires_grad=needs == "w")
        y = F.conv2d(xt, wt, make(b), 1, 2, 2)
        assert_close(y.data, ref_y, rtol=1e-10, atol=1e-12)
        y.backward(np.ones_like(ref_y))
        assert (xt.grad is None) == (needs == "w") and (wt.grad is None) == (needs == "x")


# ----------------------------------------------------------------------------- images side by side
@pytest.fixture
def side_by_side_calls(monkeypatch):
    """Counts the forward passes that put the images side by side."""
    module = sys.modules["minialex.functional.conv2d"]
    calls = []
    original = module._forward_side_by_side
    monkeypatch.setattr(module, "_forward_side_by_side", lambda *a: calls.append(a[1].shape) or original(*a))
    return calls


SIDE_BY_SIDE_CASES = [
    pytest.param((3, 4, 9, 9), 6, 5, 1, 2, 2, id="5x5-pad2-groups2"),
    pytest.param((2, 6, 6, 6), 6, 3, 1, 1, 3, id="3x3-groups3"),
    pytest.param((2, 3, 11, 10), 4, 3, 2, 0, 1, id="3x3-stride2"),
    pytest.param((1, 2, 5, 7), 3, (2, 3), (1, 2), (1, 0), 1, id="2x3-kernel-stride1x2"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("xshape,O,k,stride,padding,groups", SIDE_BY_SIDE_CASES)
def test_side_by_side_matches_the_reference_and_im2col(xshape, O, k, stride, padding, groups, dtype,
                                                       side_by_side_calls):
    x, w, b = _inputs(xshape, O, groups, seed=40, k=k)
    g = randn(*reference.conv2d(x, w, b, stride, padding, groups).shape, seed=41)
    results = {}
    for algorithm in ("auto", "im2col"):
        with F.conv_algorithm(algorithm):
            xt, wt, bt = (make(a, requires_grad=True, dtype=dtype) for a in (x, w, b))
            y = F.conv2d(xt, wt, bt, stride, padding, groups)
            y.backward(g.astype(dtype))
        results[algorithm] = (y.data, xt.grad, wt.grad, bt.grad)
    assert len(side_by_side_calls) == 1                                   # "auto" took it, "im2col" did not
    assert results["auto"][0].flags.c_contiguous and results["auto"][0].dtype == dtype
    for side, plain, name in zip(results["auto"], results["im2col"], ("y", "dx", "dw", "db")):
        assert_close(side, plain, **TOL[dtype], msg=name)
    assert_close(results["auto"][0], reference.conv2d(x, w, b, stride, padding, groups), **TOL[dtype])


@pytest.mark.parametrize("xshape,O,k,stride,padding,groups", SIDE_BY_SIDE_CASES)
def test_im2col_batch_last_holds_im2cols_columns_with_the_batch_last(xshape, O, k, stride, padding, groups):
    from minialex.functional.im2col import im2col, im2col_batch_last
    x = randn(*xshape, seed=44).astype(np.float32)
    kernel, stride, padding = (v if isinstance(v, tuple) else (v, v) for v in (k, stride, padding))
    cols = im2col_batch_last(x, kernel, stride, padding)                  # (C, kH, kW, OH, OW, N)
    assert cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, im2col(x, kernel, stride, padding).transpose(1, 2, 3, 4, 5, 0))


@pytest.mark.parametrize("xshape,O,k,stride,padding,groups", SIDE_BY_SIDE_CASES[:3])
def test_side_by_side_gradcheck(xshape, O, k, stride, padding, groups, side_by_side_calls):
    x, w, b = _inputs(xshape, O, groups, seed=42, k=k)
    with F.conv_algorithm("auto"):
        check_grads(lambda a, ww, bb: F.conv2d(a, ww, bb, stride, padding, groups),
                    [make(a, requires_grad=True) for a in (x, w, b)])
    assert side_by_side_calls


def test_auto_keeps_one_product_per_image_for_large_outputs(side_by_side_calls):
    """conv1 of the mini net (28x28 outputs, 784 >= SIDE_BY_SIDE_MAX_OUTPUTS) is faster per image."""
    x, w, b = _inputs((2, 1, 28, 28), 4, 1, seed=43, k=5)
    y = F.conv2d(make(x), make(w), make(b), 1, 2)
    assert side_by_side_calls == []
    assert_close(y.data, reference.conv2d(x, w, b, 1, 2, 1), rtol=1e-10, atol=1e-12)
