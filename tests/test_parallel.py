"""minialex.parallel: every piece done exactly once, the caller working too, no wait on idle workers."""
import threading
import warnings

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


def test_for_slices_returns_the_results_in_slice_order(two_threads):
    assert parallel.for_slices(10, lambda s: (s.start, s.stop), chunk=3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert parallel.for_slices(4, lambda s: s.start, chunk=10) == [0]


def test_a_call_inside_a_piece_runs_in_that_pieces_thread(two_threads):
    """Nested parallel ops (a convolution's pieces each running im2col, which is parallel itself) must not
    hand their inner pieces to threads that are busy with outer ones."""
    inner_threads = []
    lock = threading.Lock()

    def outer(s):
        me = threading.get_ident()
        seen = set()
        parallel.for_slices(6, lambda t: seen.add(threading.get_ident()), chunk=1)
        with lock:
            inner_threads.append((me, seen))
    parallel.for_slices(4, outer, chunk=1)
    assert len(inner_threads) == 4
    assert all(seen == {me} for me, seen in inner_threads)
    assert not parallel._in_piece.active            # outside a piece the caller's next call is parallel again


def test_the_pieces_see_the_callers_errstate(two_threads):
    """np.errstate is a context variable: a worker thread sees it only if it runs in the caller's context
    (the trainer silences the overflow of a diverging run this way; before, a piece on the worker printed
    "overflow encountered in matmul" beside the one-line NaN message)."""
    seen = []
    big = np.full(1000, 3e38, dtype=np.float32)

    def piece(s):
        threading.Event().wait(0.005)             # long enough for the worker to take pieces too
        seen.append((threading.get_ident(), np.geterr()["over"]))
        return big[:10] * np.float32(10)          # overflows: inf, and a RuntimeWarning unless ignored
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a warning in any thread becomes an error in that piece
        with np.errstate(over="ignore"):
            parallel.for_slices(20, piece, chunk=1)
    assert len({ident for ident, _ in seen}) == 2, "no piece ran on the worker: the check saw nothing"
    assert {mode for _, mode in seen} == {"ignore"}


@pytest.mark.parametrize("blas,threads,n,expected", [
    (1, 2, 32, 16),           # the mini net as `train` runs it: 2 pieces of 16 images
    (1, 2, 5, 3),             # 3 and 2 images
    (2, 2, 32, 32),           # BLAS has threads: one piece
    (1, 1, 32, 32),           # one thread: one piece
    (1, 2, 0, 1),             # an empty batch: one (empty) piece
])
def test_images_per_piece(monkeypatch, blas, threads, n, expected):
    monkeypatch.setenv("MINIALEX_NUM_THREADS", str(threads))
    monkeypatch.setattr(parallel, "get_blas_threads", lambda: blas)
    assert parallel.images_per_piece(np.zeros((n, 3))) == expected
