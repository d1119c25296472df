"""Elementwise arithmetic with NumPy broadcasting: + - * / neg, ** by a scalar, exp, log.

Broadcasting rule for gradients: if an input of shape (3, 1) was broadcast to the
output shape (2, 3, 4), each of its elements was used 2*4 times, so its gradient is
the output gradient summed over the broadcast axes (``unbroadcast``).
"""
import numbers

from ..tensor import Tensor, as_tensor


def unbroadcast(g, shape):
    """Sum gradient ``g`` (output shape) down to ``shape`` (an input's shape)."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))  # leading axes the input did not have
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)  # axes where the input had size 1
    return g


def _operands(a, b, op):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    if a.device != b.device:
        raise ValueError(f"{op}: operands are on different devices ({a.device} and {b.device})")
    try:
        a.xp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return a, b


def add(a, b):
    """a + b. Gradients: dL/da = g, dL/db = g (each summed over its broadcast axes)."""
    a, b = _operands(a, b, "add")
    out = a.data + b.data

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return Tensor.from_op(out, (a, b), backward, "add")


def sub(a, b):
    """a - b. Gradients: g and -g."""
    a, b = _operands(a, b, "sub")
    out = a.data - b.data

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)
    return Tensor.from_op(out, (a, b), backward, "sub")


def mul(a, b):
    """a * b. Gradients: g * b and g * a."""
    a, b = _operands(a, b, "mul")
    out = a.data * b.data

    def backward(g):
        ga = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "mul")


def div(a, b):
    """a / b. Gradients: g / b and -g * a / b**2."""
    a, b = _operands(a, b, "div")
    out = a.data / b.data

    def backward(g):
        ga = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None
        return ga, gb
    return Tensor.from_op(out, (a, b), backward, "div")


def neg(a):
    """-a. Gradient: -g."""
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, exponent):
    """a ** p for a scalar p. Gradient: g * p * a**(p-1)."""
    if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
        raise TypeError(f"pow: the exponent must be a Python number, got {type(exponent).__name__}")
    out = a.data ** exponent

    def backward(g):
        return (g * exponent * a.data ** (exponent - 1),)
    return Tensor.from_op(out, (a,), backward, "pow")


def exp(a):
    """exp(a). Gradient: g * exp(a)."""
    out = a.xp.exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,), "exp")


def log(a):
    """Natural log. Gradient: g / a."""
    out = a.xp.log(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g / a.data,), "log")
