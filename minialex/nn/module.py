"""Module, Parameter and Sequential: the containers of PyTorch's ``torch.nn``, kept small.

A Module finds its parameters and sub-modules by looking at its own attributes, in the
order they were set (no ``__setattr__``/``__getattr__`` magic): ``self.weight =
Parameter(...)`` registers a parameter, ``self.conv1 = Conv2d(...)`` a child. Names are
dotted paths, exactly as in PyTorch (``features.0.weight``), so state dicts line up.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimiser updates (requires_grad by default)."""

    def __init__(self, data, requires_grad=True, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"Parameter: data must be floating point, got {self.dtype}")

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class: subclasses set parameters/children in ``__init__`` and define ``forward``."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ traversal
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(value, Parameter):
                yield full, value
            elif isinstance(value, Module):
                yield from value.named_parameters(full)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    # ------------------------------------------------------------------ modes and devices
    def train(self, mode=True):
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter in place; returns self, like PyTorch."""
        if device is not None and not isinstance(device, str) and dtype is None:
            device, dtype = None, device  # module.to(np.float64)
        if device is not None:
            device = backend.check_device(device)
        for p in self.parameters():
            data = p.data if device is None else backend.to_device(p.data, device)
            if dtype is not None:
                data = data.astype(np.dtype(dtype), copy=False)
            p.data = data
            if p.grad is not None:
                p.grad = None  # a grad on the old device/dtype would be wrong to keep
        return self

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """name -> NumPy array (a copy, on the host), for every parameter."""
        return OrderedDict((name, backend.to_device(p.data, "cpu").copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters with the same names.

        Every problem is collected first: mis-shaped keys always raise; missing and
        unexpected keys raise when ``strict``. Nothing is changed unless all is well.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, arrays = [], {}
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value.numpy() if isinstance(value, Tensor) else value
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(backend.to_device(value, "cpu") if hasattr(value, "get") else value)
            if arr.dtype.kind not in "fiu":
                problems.append(f"{name}: expected a numeric array, got dtype {arr.dtype}")
            elif arr.shape != p.shape:
                problems.append(f"{name}: expected shape {p.shape}, got {arr.shape}")
            else:
                arrays[name] = arr
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed (nothing was loaded):\n  "
                             + "\n  ".join(problems))
        for name, arr in arrays.items():
            p = own[name]
            p.data = backend.to_device(arr.astype(p.dtype, copy=True), p.device)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... as in PyTorch."""

    def __init__(self, *modules):
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self):
        return sum(1 for _ in self.named_children())

    def __getitem__(self, i):
        return list(self.children())[i]

    def __iter__(self):
        return self.children()

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x
