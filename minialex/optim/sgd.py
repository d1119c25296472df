"""Stochastic gradient descent with momentum and weight decay, exactly as the paper writes it.

Krizhevsky et al. 2012, Sec. 5 ("Details of learning"), for every weight w with gradient g = dL/dw
averaged over the batch:

    v <- momentum * v - weight_decay * lr * w - lr * g
    w <- w + v

with momentum 0.9, weight_decay 0.0005 and lr 0.01 in the paper; v starts at 0.
With a constant lr this is PyTorch's ``torch.optim.SGD(momentum, weight_decay)`` with v = -lr * buf.
(When the lr changes the two differ: the paper's v carries the old lr, PyTorch's buf does not.)

Parameter groups, as in PyTorch: pass a list of dicts ``{"params": [...], "lr": ..., ...}``; keys a
group leaves out take the constructor's values. Caffe's recipe (biases: lr x2, no weight decay) is
:func:`caffe_param_groups`.
"""
import numbers

import numpy as np

from .. import backend, cuda
from ..parallel import for_slices

HYPER = ("lr", "momentum", "weight_decay")


def _check_hyper(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0.0 or value != value:
        raise ValueError(f"SGD: {name} must be a number >= 0, got {value!r}")
    if name == "momentum" and value >= 1.0:
        raise ValueError(f"SGD: momentum must be < 1, got {value!r}")
    return float(value)


def _update(w, g, v, lr, m, wd):
    """In place: v <- m v - wd lr w - lr g;  w <- w + v  (one temporary at a time)."""
    v *= m
    v -= lr * g
    if wd:
        v -= (wd * lr) * w
    w += v


def _update_on_gpu(w, g, v, lr, m, wd):
    """The same on CuPy arrays: one pass of the sgd_momentum kernel for contiguous float32
    weights (kernels/elementwise.cu), else CuPy's generic code."""
    if cuda.USE_KERNELS and w.dtype == np.float32 and w.flags.c_contiguous and v.flags.c_contiguous:
        from ..cuda import kernels as cuda_kernels
        cuda_kernels.sgd_momentum_(w, g, v, lr, m, wd)
    else:
        _update(w, g, v, lr, m, wd)


class SGD:
    """``SGD(params, lr, momentum=0.9, weight_decay=5e-4)``: the paper's update (see the module docstring).

    ``params``: an iterable of Parameters, or of dicts with a "params" key (parameter groups).
    ``zero_grad()`` clears the gradients; ``step()`` applies one update to every parameter that has a
    ``.grad`` (parameters without one are left alone, their velocity too).
    ``state_dict()`` / ``load_state_dict()``: hyper-parameters per group and the velocity of every
    parameter (by its position in the groups), for checkpoints.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=5e-4):
        defaults = {"lr": _check_hyper("lr", lr), "momentum": _check_hyper("momentum", momentum),
                    "weight_decay": _check_hyper("weight_decay", weight_decay)}
        params = list(params)
        if not params:
            raise ValueError("SGD: got an empty list of parameters")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        seen = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"SGD: parameter group {i} must be a dict with a 'params' key")
            unknown = set(group) - set(HYPER) - {"params", "name", "initial_lr"}
            if unknown:
                raise ValueError(f"SGD: parameter group {i} has unknown keys {sorted(unknown)}")
            entry = {"params": list(group["params"])}
            for p in entry["params"]:
                if not getattr(p, "requires_grad", False):
                    raise TypeError(f"SGD: parameter group {i} holds a {type(p).__name__} that does not "
                                    f"require grad")
                if id(p) in seen:
                    raise ValueError(f"SGD: a parameter appears twice (again in group {i})")
                seen.add(id(p))
            for name in HYPER:
                entry[name] = _check_hyper(name, group.get(name, defaults[name]))
            if "name" in group:
                entry["name"] = str(group["name"])
            self.param_groups.append(entry)
        self.velocity = {}   # id(param) -> array shaped like param.data, on its device

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self):
        for p in self._params():
            p.grad = None

    def step(self):
        """One update of every parameter that has a gradient: v <- m v - wd lr w - lr g; w <- w + v."""
        for group in self.param_groups:
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w, g = p.data, p.grad
                v = self.velocity.get(id(p))
                if v is None:                                   # v starts at 0
                    v = self.velocity[id(p)] = backend.xp_of(w).zeros_like(w)
                if backend.is_cupy_array(w):
                    _update_on_gpu(w, g, v, lr, m, wd)
                elif not (w.flags.c_contiguous and g.flags.c_contiguous and v.flags.c_contiguous):
                    _update(w, g, v, lr, m, wd)
                else:  # on the CPU: cache-sized pieces on all cores (see minialex/parallel.py)
                    wf, gf, vf = w.reshape(-1), g.reshape(-1), v.reshape(-1)
                    for_slices(wf.size, lambda s: _update(wf[s], gf[s], vf[s], lr, m, wd))

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """``{"param_groups": [hyper-parameters + "params": positions], "velocity": {position: ndarray}}``.

        Positions number the parameters across the groups in order; arrays are NumPy copies.
        """
        groups, velocity, position = [], {}, 0
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = list(range(position, position + len(group["params"])))
            for p in group["params"]:
                if id(p) in self.velocity:
                    velocity[position] = backend.to_device(self.velocity[id(p)], "cpu").copy()
                position += 1
            groups.append(entry)
        return {"param_groups": groups, "velocity": velocity}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned; checks that the groups and shapes match."""
        groups = state["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"SGD.load_state_dict: the state has {len(groups)} parameter groups, "
                             f"this optimiser {len(self.param_groups)}")
        params = self._params()
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"SGD.load_state_dict: group {i} has {len(saved['params'])} parameters in the "
                                 f"state, {len(own['params'])} here")
        velocity = {}
        for position, v in state["velocity"].items():
            position = int(position)
            if not 0 <= position < len(params):
                raise ValueError(f"SGD.load_state_dict: velocity for parameter {position}, but there are "
                                 f"only {len(params)}")
            p = params[position]
            if tuple(v.shape) != p.shape:
                raise ValueError(f"SGD.load_state_dict: velocity {position} has shape {tuple(v.shape)}, "
                                 f"its parameter {p.shape}")
            velocity[id(p)] = backend.to_device(v.astype(p.dtype, copy=True), p.device)
        for saved, own in zip(groups, self.param_groups):
            for name in HYPER:
                own[name] = _check_hyper(name, saved[name])
            if "initial_lr" in saved:
                own["initial_lr"] = float(saved["initial_lr"])
        self.velocity = velocity


def caffe_param_groups(model, lr, weight_decay=5e-4):
    """Caffe's bvlc_alexnet solver groups: weights (lr, decay) and biases (2 x lr, no decay).

    Returns a list for ``SGD(groups, lr, ...)``: [{"name": "weights", ...}, {"name": "biases", ...}].
    """
    weights, biases = [], []
    for name, p in model.named_parameters():
        (biases if name.endswith("bias") else weights).append(p)
    return [{"name": "weights", "params": weights, "lr": lr, "weight_decay": weight_decay},
            {"name": "biases", "params": biases, "lr": 2 * lr, "weight_decay": 0.0}]
