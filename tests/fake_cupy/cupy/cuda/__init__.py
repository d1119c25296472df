"""``cupy.cuda``: one pretend device, its streams, events and memory pool (what minialex calls)."""
import time

from . import compiler, runtime  # noqa: F401


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id} [fake cupy]")

    compute_capability = "90"

    def use(self):
        return None

    def synchronize(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"<CUDA Device {self.id} (fake cupy)>"


class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = 0 if null else id(self)

    def use(self):
        global _current_stream
        _current_stream = self
        return self

    def synchronize(self):
        return None

    def __enter__(self):
        self._previous = get_current_stream()
        return self.use()

    def __exit__(self, *exc):
        self._previous.use()
        return False


Stream.null = Stream(null=True)
_current_stream = Stream.null


def get_current_stream():
    return _current_stream


class Event:
    """Records the host time: the emulator runs every launch synchronously."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        return None

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    if start_event._t is None or end_event._t is None:
        raise RuntimeError("cudaErrorInvalidResourceHandle: event not recorded [fake cupy]")
    return (end_event._t - start_event._t) * 1e3


class MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        return None

    def set_limit(self, size=None, fraction=None):
        return None


class PinnedMemoryPool:
    def free_all_blocks(self):
        return None

    def n_free_blocks(self):
        return 0


_pool, _pinned = MemoryPool(), PinnedMemoryPool()


def get_default_memory_pool():
    return _pool


def get_default_pinned_memory_pool():
    return _pinned
