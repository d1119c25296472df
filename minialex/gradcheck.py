"""Gradient checking: compare autograd with central finite differences in float64.

For a function f of tensors x_1..x_k, autograd gives the vector-Jacobian product; finite
differences estimate the same derivatives from f alone:
    d f / d x[e]  ~  (f(x + eps e) - f(x - eps e)) / (2 eps)        (error O(eps^2))

Two modes:
* ``"full"``: the whole Jacobian, one column per input element (2 forward passes each)
  and one row per output element (a backward pass each). For small inputs.
* ``"random"``: along random directions d (Chainer's ``check_backward``): the
  directional derivative (f(x + eps d) - f(x - eps d)) / (2 eps), projected on a random
  output weighting r, against <autograd grad of (r . f), d>. Two forward passes per
  direction whatever the input size, so it scales to real layers.

Everything runs in float64: inputs are copied, cast, and made leaves requiring grad.
An element fails when |analytic - numeric| > atol + rtol * |numeric|; the report names
the element that used the largest share of that tolerance.
"""
import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when autograd and finite differences disagree."""


class GradcheckResult:
    """What a gradient check found: ``ok``, and the worst element with its numbers."""

    def __init__(self, ok, mode, worst, checked):
        self.ok, self.mode, self.worst, self.checked = ok, mode, worst, checked

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"GradcheckResult(ok={self.ok}, mode={self.mode!r}, checked={self.checked}, worst={self.worst})"

    def report(self):
        w = self.worst
        if w is None:
            return f"gradcheck ({self.mode}): nothing to check"
        where = f"input {w['input']} element {w['index']}" if "index" in w else f"direction {w['direction']}"
        if "output" in w:
            where += f", output element {w['output']}"
        verdict = "passed" if self.ok else "FAILED"
        return (f"gradcheck ({self.mode}, {self.checked} checked) {verdict}; worst at {where}: "
                f"analytic {w['analytic']:.10g}, numeric {w['numeric']:.10g}, "
                f"abs error {w['abs_error']:.3g}, rel error {w['rel_error']:.3g}, "
                f"{100 * w['used']:.1f}% of the tolerance atol + rtol*|numeric|")


def _copy64(a):
    """A float64 copy of ndarray ``a``; a non-contiguous input stays non-contiguous
    (a strided view into a larger buffer), so ops are checked on such layouts too."""
    a = np.asarray(a)
    if a.flags.c_contiguous:
        return a.astype(np.float64, copy=True)
    buf = np.empty(a.shape + (2,), dtype=np.float64)   # (*shape, 2)
    view = buf[..., 0]                                 # (*shape), strides doubled
    view[...] = a
    return view


def _leaves(inputs):
    """float64 copies of the inputs as leaves; which of them are checked (float ones)."""
    leaves, checked = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            leaves.append(Tensor(_copy64(x.numpy()), requires_grad=True))
            checked.append(i)
        elif isinstance(x, Tensor):
            leaves.append(x.detach())
        else:
            leaves.append(x)
    return leaves, checked


def _forward(fn, leaves):
    out = fn(*leaves)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _worse(cur, cand):
    return cur is None or cand["used"] > cur["used"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="auto", n_directions=3,
              seed=0, raise_exception=True, full_limit=200_000):
    """Check ``fn(*inputs)``'s gradients with respect to every floating-point input tensor.

    Args:
        fn: function of the inputs returning a Tensor (any shape).
        inputs: sequence of Tensors (float ones are checked) and other arguments.
        mode: "full", "random", or "auto" (full when inputs x outputs <= ``full_limit``).
        n_directions: number of random directions in "random" mode.
    Returns:
        a :class:`GradcheckResult` (truthy when the check passed).
    Raises:
        GradcheckError naming the worst element, when it fails and ``raise_exception``.
    """
    leaves, checked = _leaves(inputs)
    if not checked:
        arrays = [i for i, x in enumerate(inputs) if isinstance(x, np.ndarray) or backend.is_cupy_array(x)]
        if arrays:
            raise TypeError(f"gradcheck: inputs must be minialex Tensors (it checks the gradient of each "
                            f"floating-point Tensor); input {arrays[0]} is a {type(inputs[arrays[0]]).__name__}: "
                            f"wrap it, minialex.tensor(x)")
        raise ValueError("gradcheck: no floating-point tensor among the inputs")
    with no_grad():
        out0 = _forward(fn, leaves)
    n_in = sum(leaves[i].numel() for i in checked)
    if mode == "auto":
        mode = "full" if n_in * max(out0.numel(), 1) <= full_limit else "random"
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full', 'random' or 'auto', got {mode!r}")
    check = _full if mode == "full" else _random
    result = check(fn, leaves, checked, out0, eps, atol, rtol, n_directions, seed)
    if raise_exception and not result.ok:
        raise GradcheckError(result.report())
    return result


def _compare(analytic, numeric, atol, rtol, where):
    err = abs(analytic - numeric)
    return dict(where, analytic=float(analytic), numeric=float(numeric), abs_error=float(err),
                rel_error=float(err / max(abs(numeric), 1e-300)), used=float(err / (atol + rtol * abs(numeric))))


def _full(fn, leaves, checked, out0, eps, atol, rtol, n_directions, seed):
    n_out = out0.numel()
    # analytic Jacobian: one backward pass per output element (rows)
    rows = {i: np.zeros((n_out, leaves[i].numel())) for i in checked}
    for o in range(n_out):
        for i in checked:
            leaves[i].grad = None
        out = _forward(fn, leaves)
        onehot = np.zeros(n_out)
        onehot[o] = 1.0
        out.backward(onehot.reshape(out.shape).astype(out.dtype))
        for i in checked:
            g = leaves[i].grad
            rows[i][o] = 0.0 if g is None else g.reshape(-1)
    # numeric Jacobian: central differences, one column per input element
    worst, count = None, 0
    with no_grad():
        for i in checked:
            data = leaves[i].data
            for e, idx in enumerate(np.ndindex(*data.shape)):
                old = data[idx]
                data[idx] = old + eps
                plus = _forward(fn, leaves).data.reshape(-1).astype(np.float64)
                data[idx] = old - eps
                minus = _forward(fn, leaves).data.reshape(-1).astype(np.float64)
                data[idx] = old
                numeric = (plus - minus) / (2 * eps)
                analytic = rows[i][:, e]
                used = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))  # > 1 fails
                o = int(np.argmax(used))
                count += n_out
                cand = _compare(analytic[o], numeric[o], atol, rtol,
                                {"input": i, "index": idx,
                                 "output": tuple(int(v) for v in np.unravel_index(o, out0.shape))})
                if _worse(worst, cand):
                    worst = cand
    return GradcheckResult(worst["used"] <= 1, "full", worst, count)


def _random(fn, leaves, checked, out0, eps, atol, rtol, n_directions, seed):
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(out0.shape)  # random output weighting: checks all outputs at once
    for i in checked:
        leaves[i].grad = None
    out = _forward(fn, leaves)
    out.backward(r.astype(out.dtype))
    grads = {i: (leaves[i].grad if leaves[i].grad is not None else np.zeros(leaves[i].shape)) for i in checked}
    worst = None
    with no_grad():
        for k in range(n_directions):
            dirs = {i: rng.standard_normal(leaves[i].shape) for i in checked}
            norm = np.sqrt(sum((d * d).sum() for d in dirs.values()))
            saved = {i: leaves[i].data.copy() for i in checked}
            for i in checked:
                leaves[i].data[...] = saved[i] + eps * dirs[i] / norm
            plus = float((_forward(fn, leaves).data * r).sum())
            for i in checked:
                leaves[i].data[...] = saved[i] - eps * dirs[i] / norm
            minus = float((_forward(fn, leaves).data * r).sum())
            for i in checked:
                leaves[i].data[...] = saved[i]
            numeric = (plus - minus) / (2 * eps)
            analytic = float(sum((grads[i] * dirs[i]).sum() for i in checked) / norm)
            cand = _compare(analytic, numeric, atol, rtol, {"direction": k})
            if _worse(worst, cand):
                worst = cand
    return GradcheckResult(worst["used"] <= 1, "random", worst, n_directions)
