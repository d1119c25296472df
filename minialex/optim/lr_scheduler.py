"""Learning-rate schedules, stepped once per epoch (PyTorch's names and meaning).

* :class:`StepLR`: lr = initial_lr * gamma ** (epoch // step_size): Caffe's "step" policy.
* :class:`ReduceLROnPlateau`: the paper's rule (Sec. 5): "divide the learning rate by 10 when the
  validation error rate stopped improving with the current learning rate", three times in all.
* :class:`CosineAnnealingLR`: lr = initial_lr * (1 + cos(pi * epoch / T_max)) / 2, from initial_lr down to
  0 over T_max epochs (Loshchilov & Hutter, "SGDR", ICLR 2017, without the restarts; PyTorch's with
  eta_min = 0).

Both scale every parameter group's lr by the same factor, so ratios between groups (Caffe's biases at
2 x lr) are kept. ``state_dict()`` is plain JSON-able data, for checkpoints.
"""
import math


class _Scheduler:
    PERIODS = ("step_size", "T_max")      # epoch counts that divide: at least 1 in a loaded state

    def __init__(self, optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def _set_scale(self, scale):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale

    def state_dict(self):
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s values; ValueError for an unknown key or a value of the wrong kind
        (a count that is not an int >= 0, a rate that is not a number, a period < 1), before any is set."""
        name = type(self).__name__
        for k, v in state.items():
            if k not in vars(self):
                raise ValueError(f"{name}.load_state_dict: unknown key {k!r}")
            if not _same_kind(getattr(self, k), v) or (k in self.PERIODS and v < 1):
                raise ValueError(f"{name}.load_state_dict: {k} = {v!r} does not fit (it is {getattr(self, k)!r} now)")
        for k, v in state.items():
            setattr(self, k, list(v) if isinstance(v, list) else v)
        self._set_scale(self.scale)


def _same_kind(current, value):
    """Whether a loaded ``value`` may replace ``current``: an int by an int >= 0, a number by a number,
    None (not set yet) by None or a number, a list by a list of numbers."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if current is None:
        return value is None or number(value)
    if isinstance(current, list):
        return isinstance(value, list) and all(number(v) for v in value)
    if isinstance(current, int) and not isinstance(current, bool):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return number(value)


class StepLR(_Scheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs; call ``step()`` at the end of each epoch."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        if not gamma > 0:
            raise ValueError(f"StepLR: gamma must be > 0, got {gamma!r}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, float(gamma)
        self.epochs_done = 0
        self.scale = 1.0

    def step(self, metric=None):
        """End of an epoch (``metric`` is ignored: it is there so every schedule is stepped alike)."""
        self.epochs_done += 1
        self.scale = self.gamma ** (self.epochs_done // self.step_size)
        self._set_scale(self.scale)


class ReduceLROnPlateau(_Scheduler):
    """Multiply the lr by ``factor`` (0.1) when ``metric`` (a validation error) stops improving.

    ``step(metric)`` at the end of each epoch. An epoch improves when ``metric < best * (1 - threshold)``
    (relative threshold, PyTorch's default mode). After ``patience`` epochs in a row without improvement
    the lr is reduced and the count starts again; at most ``max_reductions`` times (the paper: 3), and
    never below ``min_lr``.
    """

    def __init__(self, optimizer, factor=0.1, patience=0, threshold=1e-4, max_reductions=3, min_lr=0.0):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"ReduceLROnPlateau: patience must be an int >= 0, got {patience!r}")
        super().__init__(optimizer)
        self.factor, self.patience, self.threshold = float(factor), patience, float(threshold)
        self.max_reductions = max_reductions
        self.min_lr = float(min_lr)
        self.best = None          # the best metric so far; None until the first step
        self.bad_epochs = 0
        self.reductions = 0
        self.scale = 1.0

    def step(self, metric):
        metric = float(metric)
        if self.best is None or metric < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs <= self.patience:
            return
        self.bad_epochs = 0
        if self.max_reductions is not None and self.reductions >= self.max_reductions:
            return
        if min(self.base_lrs) * self.scale * self.factor < self.min_lr:
            return
        self.reductions += 1
        self.scale *= self.factor
        self._set_scale(self.scale)


class CosineAnnealingLR(_Scheduler):
    """lr = initial_lr * (1 + cos(pi * t / T_max)) / 2 after t epochs; ``step()`` at the end of each epoch.

    Epoch t = 0 trains at initial_lr, the last one (t = T_max - 1) at initial_lr * (1 - cos(pi / T_max)) / 2;
    past T_max the lr stays at 0.
    """

    def __init__(self, optimizer, T_max):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        super().__init__(optimizer)
        self.T_max = T_max
        self.epochs_done = 0
        self.scale = 1.0

    def step(self, metric=None):
        """End of an epoch (``metric`` is ignored, as by StepLR)."""
        self.epochs_done += 1
        t = min(self.epochs_done, self.T_max)
        self.scale = 0.5 * (1.0 + math.cos(math.pi * t / self.T_max))
        self._set_scale(self.scale)


class ConstantLR(_Scheduler):
    """No schedule: the lr stays where it is (so the trainer can always call ``step``)."""

    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.scale = 1.0

    def step(self, metric=None):
        pass
