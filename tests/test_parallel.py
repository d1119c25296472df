"""minialex.parallel: every piece done exactly once, the caller working too, no wait on idle workers."""
import threading

import numpy as np
import pytest

from minialex import parallel


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("MINIALEX_NUM_THREADS", "2")


@pytest.mark.parametrize("n,chunk", [(10, 3), (7, 7), (1, 5), (64, 1)])
def test_for_slices_covers_every_index_once(two_threads, n, chunk):
    hits = np.zeros(n, dtype=int)
    lock = threading.Lock()

    def fn(s):
        with lock:
            hits[s] += 1
    parallel.for_slices(n, fn, chunk=chunk)
    assert hits.tolist() == [1] * n


def test_the_caller_does_all_pieces_when_the_workers_are_busy(two_threads):
    """A worker held up (here: by another task; on a shared machine: by other programs) must not stall
    the call: the caller takes every piece itself and the worker's unstarted task is cancelled."""
    release = threading.Event()
    blocker = parallel._executor().submit(release.wait, 30)     # occupies the pool's only worker
    done, who = [], []

    def call():
        parallel.for_slices(8, lambda s: who.append(threading.get_ident()), chunk=1)
        done.append(True)
    caller = threading.Thread(target=call)
    caller.start()
    caller.join(timeout=10)
    release.set()
    blocker.result()
    assert done == [True], "for_slices waited for a worker that never started"
    assert set(who) == {caller.ident} and len(who) == 8


def test_an_error_in_a_piece_is_raised_once_no_piece_runs(two_threads):
    running = []

    def fn(s):
        running.append(s.start)
        if s.start == 1:
            raise ValueError("piece 1 failed")
        threading.Event().wait(0.01)
        running.remove(s.start)
    with pytest.raises(ValueError, match="piece 1 failed"):
        parallel.for_slices(40, fn, chunk=1)
    assert running == [1], "a piece was still running when the error came out"


@pytest.mark.parametrize("n,sample,threads,expected", [
    (32, 125_440, 2, 8),      # the mini net's LRN1 at batch 32: 4 pieces of 8 samples
    (32, 10, 2, 32),          # tiny samples: one piece of at least MIN_PIECE elements (the whole batch)
    (16, 3_000_000, 2, 1),    # samples larger than CHUNK: one per piece
    (16, 300_000, 1, 3),      # one thread: pieces of at most CHUNK elements
])
def test_batch_chunk(n, sample, threads, expected):
    chunk = parallel.batch_chunk(n, sample, threads)
    assert chunk == expected
    assert chunk * sample <= max(parallel.CHUNK, sample) or chunk == n
