"""Tensor and autograd: arithmetic with broadcasting (gradients summed back to each input's
shape), reductions, shape ops, indexing, and the graph machinery (diamonds, backward(grad),
accumulation, no_grad, detach, retain_graph), dtypes and conversions."""
import numpy as np
import pytest

import minialex
import minialex.functional as F
from minialex import Tensor, no_grad

from conftest import assert_close, check_grads, make, randn

EXACT = dict(rtol=1e-12, atol=1e-12)


def positive(*shape, seed=0):
    return 0.5 + np.random.default_rng(seed).uniform(0.0, 1.5, size=shape)


# ============================================================================= binary arithmetic
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}
BROADCAST_SHAPES = [
    pytest.param((3, 4), (3, 4), id="same-shape"),
    pytest.param((3, 4), (4,), id="row-vector"),
    pytest.param((2, 1, 4), (3, 1), id="both-broadcast"),
    pytest.param((), (2, 3), id="scalar-tensor-left"),
    pytest.param((2, 3, 1), (1, 1, 5), id="size1-axes-keep-rank"),
]


@pytest.mark.parametrize("ashape,bshape", BROADCAST_SHAPES)
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_op_broadcasting(device, op, ashape, bshape):
    ours, ref = BINARY[op]
    a, b = randn(*ashape), positive(*bshape, seed=1)
    ta, tb = make(a, device, requires_grad=True), make(b, device, requires_grad=True)
    out = ours(ta, tb)
    assert out.shape == np.broadcast_shapes(ashape, bshape)
    assert_close(out, ref(a, b), **EXACT)
    out.backward(np.ones(out.shape))
    assert ta.grad.shape == ashape and tb.grad.shape == bshape  # reduced back to each input's shape
    check_grads(ours, [make(a), make(b)], device)


def test_broadcast_gradient_is_summed_over_the_broadcast_axes(device):
    a = make(np.zeros((3, 1)), device, requires_grad=True)
    b = make(np.zeros((2, 1, 4)), device, requires_grad=True)
    (a + b).backward(np.ones((2, 3, 4)))
    assert_close(a.grad, np.full((3, 1), 8.0), rtol=0, atol=0)  # each element used 2*4 times
    assert_close(b.grad, np.full((2, 1, 4), 3.0), rtol=0, atol=0)


@pytest.mark.parametrize("expr,ref", [
    pytest.param(lambda x: 2.0 - x, lambda x: 2.0 - x, id="rsub"),
    pytest.param(lambda x: 3.0 / x, lambda x: 3.0 / x, id="rtruediv"),
    pytest.param(lambda x: 2.0 * x + 1.0, lambda x: 2.0 * x + 1.0, id="rmul-radd"),
    pytest.param(lambda x: -x, lambda x: -x, id="neg"),
    pytest.param(lambda x: x ** 2, lambda x: x ** 2, id="pow2"),
    pytest.param(lambda x: x ** 3, lambda x: x ** 3, id="pow3"),
    pytest.param(lambda x: x ** 0.5, np.sqrt, id="pow0.5"),
    pytest.param(lambda x: x ** -1.5, lambda x: x ** -1.5, id="pow-1.5"),
    pytest.param(lambda x: x.exp(), np.exp, id="exp"),
    pytest.param(lambda x: x.log(), np.log, id="log"),
    pytest.param(lambda x: F.exp(x) * F.log(x), lambda x: np.exp(x) * np.log(x), id="exp-times-log"),
])
def test_unary_and_scalar_ops(device, expr, ref):
    x = positive(3, 4)
    assert_close(expr(make(x, device, "transposed")), ref(x), **EXACT)
    check_grads(expr, [make(x, kind="strided")], device)


def test_python_scalar_keeps_the_tensor_dtype(device):
    x = make(np.ones(3, np.float32), device)
    assert (x * 2.0).dtype == np.float32 and (1.0 - x).dtype == np.float32 and (x / 3).dtype == np.float32
    assert (x ** 2).dtype == np.float32


def test_integer_tensor_plus_float_scalar_does_not_truncate():
    out = Tensor(np.array([1, 2])) + 0.5
    assert out.dtype.kind == "f"
    assert_close(out, [1.5, 2.5], rtol=0, atol=0)


# ============================================================================= matmul
@pytest.mark.parametrize("ashape,bshape", [
    pytest.param((3, 4), (4, 5), id="matrix-matrix"),
    pytest.param((2, 3, 4), (4, 5), id="batched-left"),
    pytest.param((3, 4), (2, 4, 5), id="batched-right"),
    pytest.param((2, 1, 3, 4), (5, 4, 2), id="broadcast-batch"),
    pytest.param((4,), (4, 5), id="vector-matrix"),
    pytest.param((3, 4), (4,), id="matrix-vector"),
    pytest.param((4,), (4,), id="dot"),
    pytest.param((2, 3, 4), (4,), id="batched-matrix-vector"),
])
def test_matmul(device, ashape, bshape):
    a, b = randn(*ashape), randn(*bshape, seed=1)
    out = make(a, device, "transposed") @ make(b, device, "transposed")
    assert_close(out, a @ b, **EXACT)
    check_grads(lambda a, b: a @ b, [make(a), make(b, kind="strided")], device)


def test_matmul_with_a_numpy_array(device):
    a, b = randn(2, 3), randn(3, 2, seed=1)
    t = make(a, device, requires_grad=True)
    if device == "cpu":
        assert_close(t @ b, a @ b, **EXACT)
        assert_close(b @ t, b @ a, **EXACT)


# ============================================================================= reductions
@pytest.mark.parametrize("keepdim", [False, True], ids=["dropdim", "keepdim"])
@pytest.mark.parametrize("dim", [None, 0, -1, 1, (0, 2)], ids=["all", "dim0", "dim-1", "dim1", "dims0-2"])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reductions(device, op, dim, keepdim):
    x = randn(2, 3, 4)
    out = getattr(make(x, device, "transposed"), op)(dim, keepdim)
    expected = getattr(x, op)(axis=None if dim is None else dim, keepdims=keepdim)
    assert out.shape == expected.shape
    assert_close(out, expected, **EXACT)
    check_grads(lambda t: getattr(t, op)(dim, keepdim), [make(x, kind="strided")], device)


def test_mean_gradient_divides_by_the_count(device):
    x = make(np.zeros((2, 5)), device, requires_grad=True)
    x.mean(dim=1).sum().backward()
    assert_close(x.grad, np.full((2, 5), 0.2), **EXACT)


# ============================================================================= shape ops, indexing
@pytest.mark.parametrize("fn,ref", [
    pytest.param(lambda t: t.reshape(4, 6), lambda a: a.reshape(4, 6), id="reshape"),
    pytest.param(lambda t: t.reshape(-1), lambda a: a.reshape(-1), id="reshape-minus1"),
    pytest.param(lambda t: t.view((3, 8)), lambda a: a.reshape(3, 8), id="view-tuple"),
    pytest.param(lambda t: t.transpose(0, 2), lambda a: a.transpose(2, 1, 0), id="transpose"),
    pytest.param(lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), id="permute"),
    pytest.param(lambda t: t.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0), id="permute-tuple"),
    pytest.param(lambda t: t.T, lambda a: a.T, id="T"),
    pytest.param(lambda t: t.flatten(), lambda a: a.reshape(-1), id="flatten"),
    pytest.param(lambda t: t[1], lambda a: a[1], id="index-int"),
    pytest.param(lambda t: t[-1, 1:3], lambda a: a[-1, 1:3], id="index-negative-slice"),
    pytest.param(lambda t: t[:, ::2, 1], lambda a: a[:, ::2, 1], id="index-step"),
    pytest.param(lambda t: t[..., 0], lambda a: a[..., 0], id="index-ellipsis"),
    pytest.param(lambda t: t[np.array([0, 1, 0])], lambda a: a[np.array([0, 1, 0])], id="index-repeated-ints"),
    pytest.param(lambda t: t[:, np.array([2, 2])], lambda a: a[:, np.array([2, 2])], id="index-repeated-2"),
    pytest.param(lambda t: t[t.data > 0], lambda a: a[a > 0], id="index-bool-mask"),
])
def test_shape_ops_and_indexing(device, fn, ref):
    x = randn(2, 3, 4)
    assert_close(fn(make(x, device, "transposed")), ref(x), rtol=0, atol=0)
    check_grads(fn, [make(x, kind="strided")], device)


def test_repeated_index_accumulates_every_gradient(device):
    x = make(np.zeros(3), device, requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    assert_close(x.grad, [3.0, 0.0, 1.0], rtol=0, atol=0)


# ============================================================================= the graph
def test_diamond_a_tensor_used_several_times(device):
    """y feeds z both directly and through y*3: every path's gradient must arrive."""
    x = make(np.array([1.0, -2.0]), device, requires_grad=True)
    y = x * 2.0
    z = (y + y * 3.0).sum()
    z.backward()
    assert_close(x.grad, [8.0, 8.0], **EXACT)


def test_diamond_with_reversed_operand_order(device):
    x = make(np.array([1.0, -2.0]), device, requires_grad=True)
    y = x * 2.0
    z = (y * 3.0 + y).sum()
    z.backward()
    assert_close(x.grad, [8.0, 8.0], **EXACT)


def test_deep_shared_graph_matches_gradcheck(device):
    def fn(x):
        a = x * x
        b = a.exp() + a
        c = (b * a - x).sum(dim=1)
        return c * c.sum() + a.mean()
    check_grads(fn, [make(randn(3, 4, scale=0.5))], device)


def test_same_tensor_twice_in_one_op(device):
    x = make(np.array([3.0]), device, requires_grad=True)
    (x * x).backward(np.ones(1))
    assert_close(x.grad, [6.0], **EXACT)


def test_backward_with_explicit_grad(device):
    x = make(np.arange(3.0), device, requires_grad=True)
    (x * 2.0).backward(np.array([1.0, 10.0, 100.0]))
    assert_close(x.grad, [2.0, 20.0, 200.0], **EXACT)
    y = make(np.arange(3.0), device, requires_grad=True)
    (y * 2.0).backward(Tensor(np.array([1.0, 1.0, 1.0]), device=device))
    assert_close(y.grad, [2.0, 2.0, 2.0], **EXACT)


def test_grad_accumulates_across_two_backward_calls(device):
    x = make(np.array([1.0, 2.0]), device, requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert_close(x.grad, [3.0 + 2.0, 3.0 + 4.0], **EXACT)
    x.zero_grad()
    assert x.grad is None


def test_no_grad_records_nothing(device):
    x = make(np.ones(2), device, requires_grad=True)
    with no_grad():
        y = x * 2.0
        assert not minialex.is_grad_enabled()
    assert minialex.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @no_grad()
    def double(t):
        return t * 2.0
    assert not double(x).requires_grad
    assert (x * 2.0).requires_grad


def test_detach_cuts_the_graph(device):
    x = make(np.array([1.0, 2.0]), device, requires_grad=True)
    d = (x * 2.0).detach()
    assert d.is_leaf and not d.requires_grad and d.device == device
    (x * d).sum().backward()
    assert_close(x.grad, [2.0, 4.0], **EXACT)  # d is a constant: no gradient through it


def test_retain_graph(device):
    x = make(np.array([1.0, 2.0]), device, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, [4.0, 8.0], **EXACT)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_second_backward_through_a_freed_shared_part_raises(device):
    """A freed intermediate must not be mistaken for a leaf (silently wrong gradients)."""
    x = make(np.array([1.0]), device, requires_grad=True)
    y = x * 2.0
    y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (y * 3.0).sum().backward()


def test_backward_needs_grad_for_non_scalar(device):
    x = make(np.ones(3), device, requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), expected \(3,\)"):
        (x * 2.0).backward(np.ones(2))


def test_to_dtype_is_differentiable(device):
    x = make(np.array([1.5, 2.0], np.float32), device, requires_grad=True)
    y = x.to(np.float64)
    assert y.dtype == np.float64 and x.double().dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    assert_close(x.grad, [3.0, 4.0], **EXACT)


# ============================================================================= dtypes and conversions
def test_python_floats_default_to_float32():
    assert minialex.tensor(1.5).dtype == np.float32
    assert minialex.tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor([[0.5]]).dtype == np.float32
    assert minialex.tensor([1, 2]).dtype == np.int64


def test_float64_is_honoured():
    t = minialex.tensor(0.1, dtype=np.float64)
    assert t.dtype == np.float64 and t.item() == 0.1  # not rounded through float32
    assert Tensor(np.array([0.1])).dtype == np.float64  # an array keeps its dtype
    assert (Tensor(np.array([0.1])) * 2.0).dtype == np.float64
    assert minialex.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_item_numpy_and_to_cpu(device):
    t = make(np.array([[2.5]]), device)
    assert t.item() == 2.5 and isinstance(t.item(), float)
    arr = t.numpy()
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 1)
    c = t.to("cpu")
    assert c.device == "cpu" and isinstance(c.data, np.ndarray)
    assert_close(c, [[2.5]], rtol=0, atol=0)
    cpu = Tensor(np.ones(2))
    assert cpu.to("cpu") is cpu  # nothing to do: the same tensor
    with pytest.raises(ValueError, match="item"):
        make(np.ones(2), device).item()


def test_to_device_round_trip_keeps_gradient(device):
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.to(device)
    assert y.device == device
    (y * y).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    assert_close(x.grad, [2.0, 4.0], **EXACT)


def test_properties_and_repr():
    t = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and len(t) == 2 and t.size(1) == 3
    assert t.is_leaf and "requires_grad=True" in repr(t)
    assert "grad_fn=mul" in repr(t * 2.0)


def test_comparisons_give_bool_tensors():
    t = Tensor(np.array([1.0, 2.0, 3.0]))
    assert (t > 1.5).numpy().tolist() == [False, True, True]
    assert (t == 2.0).numpy().tolist() == [False, True, False]
    assert t.argmax().item() == 2
