"""TrainConfig: every setting of a training run, with the defaults of ``python -m minialex train``.

The optimiser defaults were chosen by measurement on the digits (benchmarks/RESULTS.md): batch 32,
lr 0.01 on a cosine schedule over 25 epochs, then the paper's multi-view test (five crops on the digits,
``final_test``). As 2 ranks (``--ranks auto`` on 2 CPUs) on an AMD EPYC (CPU family 26) that reaches
98.9, 98.5 and 98.6% over seeds 0-2 with the five crops (98.6, 98.1 and 98.4% over seeds 3-5; mean of the
six 98.52%), against means of 98.37% for 20 epochs (98.3, 98.4, 98.2% over seeds 0-2) and 98.20% for 15
(97.9, 98.4, 98.3%). Before a change of the convolutions' summation order (same maths, other float32
rounding) the same machine gave 98.50% for 20 epochs (98.5, 98.5, 98.5%), 98.43% for 18 and 98.33% for 15:
one seed moves a run by up to a point, and the rounding moved the 20-epoch median by 0.2 points, but
under both roundings each 5 more epochs added about 0.15 points to the six-seed mean. Dropout 0.5, weight
decay 1e-3, lr 0.02 and Caffe's parameter groups (15 epochs each) ended at a median of 98.0-98.4%; label
smoothing 0.1, dropout 0 or 0.1, batch 16 or 64 and lr 0.005-0.015 did no better in earlier rounds.

A run's config is stored in its checkpoint, so ``--resume`` continues it exactly; that includes the
convolution algorithm, whose float32 rounding differs (``minialex.functional.conv_algorithm``).
"""
import dataclasses
import math
import numbers
from dataclasses import dataclass, field

DATASETS = ("digits", "cifar10", "imagefolder")
SCHEDULES = ("none", "step", "plateau", "cosine")
PARAM_GROUPS = ("single", "caffe")
FINAL_TESTS = ("auto", "single", "five-crop", "ten-crop")
# Dropout on fc6/fc7 when --dropout is not given. For the mini net (fc layers 256 wide) on the digits,
# 0.3 with the schedule below reached 1.7-1.9% test error over two seeds; 0.5 with a single x0.1 step
# ended at 2.7% (benchmarks/RESULTS.md, "Choosing the defaults").
MODEL_DROPOUT = {"mini": 0.3}


class ConfigError(ValueError):
    """A setting that cannot work; the message names the flag and the value."""


@dataclass
class TrainConfig:
    model: str = "mini"                 # alexnet variant: mini, paper, caffe, torchvision
    dataset: str = "digits"             # digits (bundled), cifar10, imagefolder
    data_path: str = None               # directory for cifar10 / imagefolder
    device: str = "cpu"                 # cpu or cuda
    batch_size: int = 32
    epochs: int = 25
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"            # none, step (x gamma every step_size epochs), plateau (the paper's), cosine
    step_size: int = 4
    gamma: float = 0.3
    patience: int = 0                   # plateau: epochs without improvement before dividing the lr
    param_groups: str = "single"        # single, or caffe (biases: 2 x lr, no weight decay)
    init: str = None                    # paper, caffe, he, default; None: the variant's default
    grouped: bool = True                # groups=2 on conv2/4/5
    dropout: float = None               # None: the variant's own, MODEL_DROPOUT (0.5 as in the paper; mini 0.3)
    augment: bool = True                # random crops (+ flips for colour images)
    color_pca: bool = False             # the paper's PCA colour noise (colour datasets)
    seed: int = 0
    log_interval: int = 0               # print the running loss every N batches (0: per epoch only)
    max_batches: int = None             # at most N batches per epoch (train and test): quick runs; None/0: all
    prefetch: int = 2                   # batches loaded ahead in a background thread (0: none)
    conv_algorithm: str = None          # auto, im2col, winograd; None: $MINIALEX_CONV_ALGORITHM, else auto
    final_test: str = "auto"            # the test after the last epoch (final_test_views): auto, single, five-crop,
                                        # ten-crop
    out: str = None                     # run directory; default runs/<model>-<dataset>-<time>
    changes: list = field(default_factory=list)   # settings changed on --resume: {epoch, batch, setting, from, to}

    @property
    def model_dropout(self):
        """The dropout probability the model gets: --dropout, or the variant's own default."""
        return self.dropout if self.dropout is not None else MODEL_DROPOUT.get(self.model, 0.5)

    @property
    def final_test_views(self):
        """The views of the test after the last epoch: --final-test, where "auto" is the five crops on the digits
        (corners and centre of the padded image, softmax averaged, the paper's test without its mirrors: the
        digits are not flipped in training; measured over 49 runs: 0.3 points above the single view in the median,
        from 0.2 below to 0.9 above, benchmarks/RESULTS.md)
        and the single view elsewhere (ten crops cost ten test passes over a photo test set)."""
        if self.final_test != "auto":
            return self.final_test
        return "five-crop" if self.dataset == "digits" else "single"

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        # Checkpoints written before conv_algorithm existed trained with im2col throughout.
        d = {"conv_algorithm": "im2col", **d}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown settings {sorted(unknown)}")
        return cls(**d)

    def _check_types(self):
        """Each setting has its field's type (a hand-edited checkpoint may hold "0.01" or [1])."""
        kinds = {str: ("a string", str), int: ("an integer", numbers.Integral), float: ("a number", numbers.Real),
                 bool: ("true or false", bool), list: ("a list", list)}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            what, kind = kinds[f.type]
            if not isinstance(value, kind) or (isinstance(value, bool) and f.type is not bool):
                raise ConfigError(f"--{f.name.replace('_', '-')} must be {what}, got {value!r}")
        for change in self.changes:
            if not isinstance(change, dict) or not {"epoch", "setting"} <= set(change):
                raise ConfigError(f"changes: each entry must be a record with epoch and setting, got {change!r}")

    def validate(self):
        """Raise ConfigError naming the first bad setting; returns self."""
        from ..functional.algorithms import CONV_ALGORITHMS as ALGORITHMS
        from ..models import VARIANTS
        from ..models.alexnet import INITS
        self._check_types()
        if self.max_batches == 0:
            self.max_batches = None                   # --max-batches 0: no limit
        choices = {"model": VARIANTS, "dataset": DATASETS, "schedule": SCHEDULES, "param_groups": PARAM_GROUPS,
                   "device": ("cpu", "cuda"), "final_test": FINAL_TESTS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)!r} is not one of: "
                                  f"{', '.join(allowed)}")
        if self.conv_algorithm is not None and self.conv_algorithm not in ALGORITHMS:
            raise ConfigError(f"--conv-algorithm {self.conv_algorithm!r} is not one of: {', '.join(ALGORITHMS)}")
        if self.init is not None and self.init not in INITS:
            raise ConfigError(f"--init {self.init!r} is not one of: {', '.join(INITS)}")
        for name in ("batch_size", "epochs", "step_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        for name in ("patience", "log_interval", "prefetch", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 0, got {getattr(self, name)}")
        if self.max_batches is not None and self.max_batches < 1:
            raise ConfigError(f"--max-batches must be a positive integer, got {self.max_batches}")
        for name in ("lr", "weight_decay", "momentum", "gamma"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
        if self.lr == 0:
            raise ConfigError("--lr must be > 0")
        if self.momentum >= 1:
            raise ConfigError(f"--momentum must be < 1, got {self.momentum}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma}")
        if self.schedule == "plateau" and self.gamma == 1:
            raise ConfigError("--gamma must be < 1 with --schedule plateau (it divides the lr by 1/gamma), got 1")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.dataset in ("cifar10", "imagefolder") and not self.data_path:
            raise ConfigError(f"--dataset {self.dataset} needs --data-path DIR")
        return self
