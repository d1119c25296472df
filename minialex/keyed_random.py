"""Random numbers keyed by the sample they are drawn for, not by the order in which a process draws them.

Why: with one generator per process, the dropout mask a sample gets depends on how many numbers the
process drew before it, so on which rank it landed and on how the batch was split. Data-parallel
training must not change the model, so inside the trainer every row's random numbers are a function
of its key alone:

    (STREAM, seed, epoch, sample index, draw)          draw = 0 for the first dropout layer, 1 for the next ...

The same sample in the same epoch gets the same mask whether one process trains the whole batch or
K processes train a shard each, and a resumed run gets the masks an uninterrupted run got.

    with keyed_random.samples(indices, seed=0, epoch=3):     # indices: the batch's dataset indices (B,)
        logits = model(x)                                    # dropout draws row i from sample indices[i]

Outside such a block (the library default) ``minialex.functional.dropout`` draws from minialex's
host generator (``minialex.backend.rng``) as before. The augmentation of a sample (crop, flip) is keyed the same
way by the DataLoader: from the sample's position in the epoch's order (``minialex.data.loader``).

How the numbers are made: counter-based, with SplitMix64 (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014; the generator Java's SplittableRandom uses):

    mix(z) = f(z + GAMMA),  f: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
                              z ^= z >> 31                                   (all modulo 2^64)
    row key   k = mix(mix(mix(mix(mix(STREAM) ^ seed) ^ epoch) ^ sample) ^ draw)
    number j  u_j = top 24 bits of mix(k + j * GAMMA) / 2^24      (j = 0, 1, ... over the row, C order)

that is, u_0, u_1, ... are the outputs of a SplitMix64 generator seeded with k (float64: the top 53 bits).
Every number is a function of its key and position alone, so a whole batch is drawn in a few NumPy
passes over uint64 arrays instead of one NumPy generator per row (about 30 us each): for the mini
net's 32 x 256 mask 0.13 against 0.89 ms on a quiet 2-core machine, 0.3 against 3.1 ms on a busy one.
tests/test_distributed.py checks it against SplitMix64 written out in plain Python.
"""
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

STREAM = 0x6D61736B        # "mask": keeps these streams apart from any other use of the same numbers
GAMMA = np.uint64(0x9E3779B97F4A7C15)       # SplitMix64's increment: 2^64 / the golden ratio, odd
_MUL1, _MUL2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SHIFT = {n: np.uint64(n) for n in (11, 27, 30, 31, 40)}
MASK64 = (1 << 64) - 1
_active = ContextVar("minialex_keyed_samples", default=None)


def _mix(z):
    """SplitMix64's step: f(z + GAMMA) on a uint64 array (wrapping arithmetic), a new array."""
    z = z + GAMMA
    z ^= z >> _SHIFT[30]
    z *= _MUL1
    z ^= z >> _SHIFT[27]
    z *= _MUL2
    z ^= z >> _SHIFT[31]
    return z


class SampleKeys:
    """The keys of one batch: dataset ``indices`` (B,), ``seed`` and ``epoch``; counts the draws made."""

    def __init__(self, indices, seed, epoch):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)   # (B,)
        self.seed, self.epoch = int(seed), int(epoch)
        self.draws = 0

    def row_keys(self, draw):
        """The (B,) uint64 keys k of this batch's rows for draw number ``draw`` (formula above)."""
        words = (np.uint64(self.seed & MASK64), np.uint64(self.epoch & MASK64),   # negative: two's complement
                 self.indices.astype(np.uint64), np.uint64(draw & MASK64))        # the samples: (B,)
        key = np.full(len(self.indices), STREAM, dtype=np.uint64)                   # (B,)
        for word in words:
            key = _mix(key) ^ word
        return _mix(key)

    def uniform(self, shape, dtype=np.float32):
        """Host array of ``shape`` (B, ...) with U[0, 1) numbers; row i from sample ``indices[i]``'s
        key for this draw. Each call is the next draw."""
        if len(shape) == 0 or shape[0] != len(self.indices):
            raise ValueError(f"keyed_random: an array of shape {tuple(shape)} does not have one row per sample "
                             f"of this batch ({len(self.indices)} samples)")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"keyed_random: uniform numbers are float32 or float64, not {dtype}")
        per_row = int(np.prod(shape[1:], dtype=np.int64))
        keys = self.row_keys(self.draws)                                              # (B,)
        self.draws += 1
        steps = np.arange(per_row, dtype=np.uint64) * GAMMA                           # (N,) j * GAMMA
        bits = _mix(keys[:, None] + steps[None, :])                                   # (B, N) uint64
        if dtype == np.float32:       # 24 bits: every value k / 2^24 is exact in float32, and < 1
            out = (bits >> _SHIFT[40]).astype(np.float32) * np.float32(2.0 ** -24)
        else:
            out = (bits >> _SHIFT[11]).astype(np.float64) * (2.0 ** -53)
        return out.reshape(shape)                                                     # (B, ...)


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
