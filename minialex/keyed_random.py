"""Random numbers keyed by the sample they are drawn for, not by the order in which a process draws them.

Why: with one generator per process, the dropout mask a sample gets depends on how many numbers the
process drew before it, so on which rank it landed and on how the batch was split. Data-parallel
training must not change the model, so inside the trainer every row's random numbers come from a
generator of its own, seeded by

    (STREAM, seed, epoch, sample index, draw)          draw = 0 for the first dropout layer, 1 for the next ...

The same sample in the same epoch gets the same mask whether one process trains the whole batch or
K processes train a shard each, and a resumed run gets the masks an uninterrupted run got.

    with keyed_random.samples(indices, seed=0, epoch=3):     # indices: the batch's dataset indices (B,)
        logits = model(x)                                    # dropout draws row i from sample indices[i]

Outside such a block (the library default) ``minialex.functional.dropout`` draws from minialex's
host generator (``minialex.backend.rng``) as before. The augmentation of a sample (crop, flip) is keyed the same
way by the DataLoader: from the sample's position in the epoch's order (``minialex.data.loader``).

Cost: NumPy builds one generator per row, about 30 us; 64 rows a step for the mini net at batch 32.
"""
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

STREAM = 0x6D61736B        # "mask": keeps these streams apart from any other use of the same numbers
_active = ContextVar("minialex_keyed_samples", default=None)


class SampleKeys:
    """The keys of one batch: dataset ``indices`` (B,), ``seed`` and ``epoch``; counts the draws made."""

    def __init__(self, indices, seed, epoch):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)   # (B,)
        self.seed, self.epoch = int(seed), int(epoch)
        self.draws = 0

    def uniform(self, shape, dtype=np.float32):
        """Host array of ``shape`` (B, ...) with U[0, 1) numbers; row i from sample ``indices[i]``'s
        generator for this draw. Each call is the next draw."""
        if len(shape) == 0 or shape[0] != len(self.indices):
            raise ValueError(f"keyed_random: an array of shape {tuple(shape)} does not have one row per sample "
                             f"of this batch ({len(self.indices)} samples)")
        out = np.empty(shape, dtype=dtype)                                 # (B, ...)
        for row, index in enumerate(self.indices):
            key = [STREAM, self.seed, self.epoch, int(index), self.draws]
            out[row] = np.random.default_rng(key).random(shape[1:], dtype=dtype)
        self.draws += 1
        return out


@contextmanager
def samples(indices, seed, epoch):
    """Inside the block, keyed draws (``active()``) belong to these samples; ``indices`` None: no keys."""
    if indices is None:
        yield None
        return
    keys = SampleKeys(indices, seed, epoch)
    token = _active.set(keys)
    try:
        yield keys
    finally:
        _active.reset(token)


def active():
    """The SampleKeys of the enclosing ``samples`` block, or None."""
    return _active.get()
