"""Tensor: an ndarray with reverse-mode automatic differentiation.

How autograd works here (in the manner of micrograd, with arrays instead of scalars):

* Every op computes its output array and, next to it, a ``backward(g)`` closure that
  maps the gradient of the output to the gradients of its inputs (see
  ``minialex/functional/*.py``: forward and backward side by side).
* ``Tensor.from_op(data, parents, backward)`` records that closure on the output, so
  the tensors form a graph (a DAG: a tensor may be used several times).
* ``loss.backward()`` sorts the graph topologically and walks it from the loss back
  to the leaves, summing the gradients that reach each tensor. Leaves that
  ``requires_grad`` accumulate into ``.grad`` with ``+=``, like PyTorch.
"""
import numbers

import numpy as np

from . import backend

_grad_enabled = True


class no_grad:
    """Context manager (and decorator) that turns graph recording off, like ``torch.no_grad``."""

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, False
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def is_grad_enabled():
    return _grad_enabled


def _as_array(data, dtype=None, device="cpu"):
    """Turn ``data`` into an ndarray on ``device``; float32 unless told otherwise.

    Python floats become float32, Python ints int64, bools bool (PyTorch's
    defaults); a NumPy/CuPy array keeps its dtype unless ``dtype`` is given.
    """
    device = backend.check_device(device)
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "dtype") and hasattr(data, "shape"):
        arr = data
    else:
        arr = np.asarray(data)
        if arr.dtype == np.float64 and dtype is None:  # Python floats (cast once, not via float32, when dtype is given)
            arr = arr.astype(np.float32)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} of {arr.dtype} values")
    arr = backend.to_device(arr, device)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return arr


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Attributes:
        data: the ndarray (numpy on "cpu", cupy on "cuda").
        grad: ndarray of ``data``'s shape, or None; accumulated by ``backward``.
        requires_grad: whether gradients flow to this tensor.
    """

    __array_priority__ = 1000  # make ndarray <op> Tensor call Tensor's reflected op

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if device is None:
            device = backend.device_of(data.data if isinstance(data, Tensor) else data)
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self._ctx = None      # (parents, backward) for a tensor made by an op; None for a leaf
        self._op = ""         # name of the op that made it, for error messages and printing
        self._freed = False   # its graph was released by a backward() without retain_graph

    # ----------------------------------------------------------------- construction by ops
    @classmethod
    def from_op(cls, data, parents, backward, op=""):
        """The output of an op: records ``backward`` when any parent needs a gradient.

        ``backward(g)`` receives the output gradient (an ndarray shaped like ``data``)
        and returns one gradient (or None) per parent, each shaped like that parent.
        """
        out = cls.__new__(cls)
        out.data, out.grad, out._op, out._freed = data, None, op, False
        out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
        out._ctx = (tuple(parents), backward) if out.requires_grad else None
        return out

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def xp(self):
        """The array module of this tensor's data (numpy or cupy)."""
        return backend.xp_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        extra = f", grad_fn={self._op}" if self._ctx else (", requires_grad=True" if self.requires_grad else "")
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        return f"tensor({np.array2string(self.numpy(), prefix='tensor(')}{dev}, dtype={self.dtype}{extra})"

    # ----------------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (a copy when it lives on the GPU)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data, requires_grad=False)

    def to(self, device=None, dtype=None):
        """A copy on ``device`` and/or as ``dtype`` (self when nothing changes); differentiable."""
        if device is not None and not isinstance(device, str) and dtype is None:
            device, dtype = None, device  # t.to(np.float64)
        src_dev = self.device
        dst_dev = src_dev if device is None else backend.check_device(device)
        src_dtype = self.dtype
        dst_dtype = src_dtype if dtype is None else np.dtype(dtype)
        if dst_dev == src_dev and dst_dtype == src_dtype:
            return self
        data = backend.to_device(self.data, dst_dev).astype(dst_dtype, copy=False)

        def backward(g):
            return (backend.to_device(g, src_dev).astype(src_dtype, copy=False),)
        return Tensor.from_op(data, (self,), backward, "to")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        self.grad = None

    # ----------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the gradient of some scalar with respect to ``self``; it may be
        omitted only when ``self`` has one element (it is then 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(was it computed under no_grad(), or from tensors without requires_grad?)")
        if self._freed:
            raise RuntimeError("backward(): the graph was already used and freed; "
                               "pass retain_graph=True to the first backward() to go through it twice")
        xp = self.xp
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be omitted only for a one-element tensor, "
                                   f"this one has shape {self.shape}")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(): grad has shape {tuple(grad.shape)}, expected {self.shape}")
            grad = grad.astype(self.dtype, copy=False)

        grads = {id(self): grad}                  # id(node) -> the gradient summed into it so far
        held_elsewhere = {id(grad)}               # arrays a leaf may not keep without a copy
        for node in reversed(_topological_order(self)):   # from self down to the leaves
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:
                _accumulate_leaf_grad(node, g, held_elsewhere)
                continue
            parents, backward_fn = node._ctx
            for p, pg in zip(parents, backward_fn(g)):    # the chain rule: one op's backward
                if pg is None or not p.requires_grad:
                    continue
                grads[id(p)] = grads[id(p)] + pg if id(p) in grads else pg
            if not retain_graph:  # release the saved arrays; the graph can't be used again
                node._ctx, node._freed = None, True

    # ----------------------------------------------------------------- arithmetic (see functional/)
    def __add__(self, other):
        return _functional().add(self, other)

    def __radd__(self, other):
        return _functional().add(other, self)

    def __sub__(self, other):
        return _functional().sub(self, other)

    def __rsub__(self, other):
        return _functional().sub(other, self)

    def __mul__(self, other):
        return _functional().mul(self, other)

    def __rmul__(self, other):
        return _functional().mul(other, self)

    def __truediv__(self, other):
        return _functional().div(self, other)

    def __rtruediv__(self, other):
        return _functional().div(other, self)

    def __neg__(self):
        return _functional().neg(self)

    def __pow__(self, exponent):
        return _functional().pow(self, exponent)

    def __matmul__(self, other):
        return _functional().matmul(self, other)

    def __rmatmul__(self, other):
        return _functional().matmul(other, self)

    def __getitem__(self, index):
        return _functional().getitem(self, index)

    def sum(self, dim=None, keepdim=False):
        return _functional().sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return _functional().mean(self, dim, keepdim)

    def reshape(self, *shape):
        return _functional().reshape(self, *shape)

    def view(self, *shape):
        return _functional().reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _functional().flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _functional().transpose(self, dim0, dim1)

    @property
    def T(self):
        return _functional().permute(self, tuple(reversed(range(self.ndim))))

    def permute(self, *dims):
        return _functional().permute(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)

    def exp(self):
        return _functional().exp(self)

    def log(self):
        return _functional().log(self)

    def relu(self):
        return _functional().relu(self)

    def softmax(self, dim):
        return _functional().softmax(self, dim)

    def log_softmax(self, dim):
        return _functional().log_softmax(self, dim)

    def argmax(self, dim=None):
        return Tensor(self.data.argmax(axis=dim))

    # comparisons give plain (non-differentiable) bool tensors
    def _cmp(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __eq__(self, other):
        return self._cmp(other, lambda a, b: a == b)

    def __lt__(self, other):
        return self._cmp(other, lambda a, b: a < b)

    def __gt__(self, other):
        return self._cmp(other, lambda a, b: a > b)

    def __le__(self, other):
        return self._cmp(other, lambda a, b: a <= b)

    def __ge__(self, other):
        return self._cmp(other, lambda a, b: a >= b)

    __hash__ = object.__hash__  # tensors are graph nodes: hashed by identity


def _topological_order(root):
    """The nodes of the graph below ``root`` that need a gradient, each after all its inputs.

    An iterative depth-first search (deep nets would overflow Python's recursion). A node is
    marked when it is expanded, not when pushed: marking on push can emit a node before another
    path's node that also feeds it (x -> y; z = y + 3*y), losing that gradient."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._freed:
            raise RuntimeError(f"backward(): part of this graph ({node._op or 'a tensor'} output) was already "
                               "used and freed by an earlier backward(); pass retain_graph=True to it")
        stack.append((node, True))
        if node._ctx is not None:
            for p in node._ctx[0]:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def _accumulate_leaf_grad(leaf, g, held_elsewhere):
    """``leaf.grad += g`` (PyTorch's accumulation), or ``leaf.grad = g`` for the first gradient.

    A fresh gradient array that nobody else holds is kept as it is instead of copied: that saves
    a copy of fc6's 150 MB weight gradient every step, on the CPU and the GPU alike. An array
    in ``held_elsewhere`` (the caller's seed gradient, or one already given to another leaf) is
    copied; ``g`` joins that set either way."""
    if leaf.grad is not None:
        leaf.grad += g
    elif _owns_its_memory(g) and g.dtype == leaf.dtype and id(g) not in held_elsewhere:
        leaf.grad = g
    else:
        leaf.grad = g.astype(leaf.dtype, copy=True)
    held_elsewhere.add(id(g))


def _owns_its_memory(a):
    """Whether ndarray ``a`` (NumPy or CuPy) is no view of another array and may be written."""
    return a.base is None and (not isinstance(a, np.ndarray) or a.flags.writeable)


def _functional():
    from . import functional  # late import: functional imports this module
    return functional


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Make a leaf tensor, like ``torch.tensor``: float32 by default for Python floats."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def as_tensor(x, like=None):
    """``x`` itself if it is a Tensor; a scalar or array becomes a constant leaf on ``like``'s device.

    Python scalars take ``like``'s dtype so that ``t * 2.0`` stays float32.
    """
    if isinstance(x, Tensor):
        return x
    if (like is not None and isinstance(x, numbers.Number) and not isinstance(x, bool)
            and (like.dtype.kind == "f" or isinstance(x, numbers.Integral))):  # int tensor + 0.5 must not truncate
        return Tensor(like.xp.asarray(x, dtype=like.dtype))
    device = like.device if like is not None else "cpu"
    return Tensor(x, device=device)
