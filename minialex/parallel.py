"""Use every core for NumPy's memory-bound work, and for matrix products when BLAS has one thread.

NumPy's elementwise operations run on one core, but they release the GIL, so a few Python
threads working on separate pieces of an array run truly in parallel. Pieces of about a
megabyte also keep the temporaries of a multi-step update (``v *= m; v -= lr * g; ...``) in
the cache instead of streaming them through memory. Measured on the 2-core machine: the SGD
update of AlexNet's 61 M parameters takes 172 ms whole, 129 ms in 1 M-element pieces, 70 ms in
pieces on 2 threads.

How the pieces are shared: the calling thread works on them too, and every thread takes the next
piece nobody has started (a shared counter), so no thread waits while pieces remain. When the
other cores are busy with other programs, a worker thread may not get a core for milliseconds; by
then the caller has done its pieces and the worker's, and the worker's unstarted task is cancelled
instead of waited for. (Before, the caller handed every piece to the pool and slept: on the shared
2-core machine under load, a third of the mini net's training step went to waiting for workers.)

Matrix products release the GIL too. With one BLAS thread (``minialex train`` on the CPU sets it)
``product_threads`` says how many may run side by side: convolution then runs its batch in one piece
per thread, im2col and all (``images_per_piece``), and a large fc layer its output features. A
parallel call made inside such a piece runs serially in the piece's thread.

``MINIALEX_NUM_THREADS`` sets the number of threads (default: the CPUs this process may use).
"""
import contextvars
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import backend
from .blas_threads import get_blas_threads
from .shapes import ceil_div

CHUNK = 1 << 20          # elements per piece (4 MB of float32); also the largest piece of a batch
MIN_PIECE = 1 << 17      # elements below which a piece of a batch is not worth a thread hand-off
PIECES_PER_THREAD = 2    # pieces of a batch per thread: some slack when one thread is held up
_pool = None
_in_piece = threading.local()   # .active: this thread is running a piece of a for_slices call


def available_cpus():
    """The CPUs this process may use (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def num_threads():
    env = os.environ.get("MINIALEX_NUM_THREADS")
    if env:
        return max(1, int(env))
    return available_cpus()


def _executor():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, num_threads() - 1), thread_name_prefix="minialex")
    return _pool


def for_slices(n, fn, chunk=CHUNK):
    """Call ``fn(s)`` for consecutive slices ``s`` covering range(n), ``chunk`` long, and return their
    results in slice order. With more than one piece, the calling thread and up to num_threads() - 1
    pool threads share them (each takes the next unstarted piece). Returns when all are done. After an
    error in a piece no more pieces are started; the error is re-raised once the pieces already running
    have finished. A call made inside a piece (a parallel op inside a parallel op) runs its pieces in
    its own thread, one after another: the threads are busy with the outer pieces already. The pieces see
    the caller's ``np.errstate`` (and other context variables)."""
    slices = [slice(start, min(n, start + chunk)) for start in range(0, n, chunk)]
    results = [None] * len(slices)
    threads = num_threads()
    if len(slices) == 1 or threads == 1 or getattr(_in_piece, "active", False):
        for i, s in enumerate(slices):
            results[i] = fn(s)
        return results
    claim = itertools.count()               # next(claim) is atomic under the GIL: one piece per number
    failed = []

    def work():
        _in_piece.active = True
        try:
            for i in claim:
                if i >= len(slices) or failed:
                    return
                try:
                    results[i] = fn(slices[i])
                except BaseException:
                    failed.append(True)
                    raise
        finally:
            _in_piece.active = False
    # each helper runs in a copy of the caller's context: np.errstate (a context variable in NumPy 2) and
    # minialex's own context variables then hold in the pieces as they do in the caller
    helpers = [_executor().submit(contextvars.copy_context().run, work)
               for _ in range(min(threads, len(slices)) - 1)]
    try:
        work()
    finally:
        errors = []
        for future in helpers:
            if not future.cancel():          # started (or done): wait for it, it may be writing
                try:
                    future.result()
                except BaseException as exc:  # noqa: B902 - re-raised below, after all have stopped
                    errors.append(exc)
        if errors:
            raise errors[0]
    return results


def product_threads(x):
    """How many matrix products on arrays like x may run side by side, one per thread: num_threads() on
    NumPy when BLAS has one thread (as ``minialex train`` runs it on the CPU), else 1 (BLAS spreads each
    product over its own threads then, and two levels of threads would fight for the cores; CuPy is
    parallel anyway). Used by conv2d (pieces of the batch) and linear (pieces of the output features)."""
    if backend.xp_of(x).__name__ != "numpy" or num_threads() == 1 or get_blas_threads() != 1:
        return 1
    return num_threads()


def images_per_piece(x):
    """Images per piece for an op that runs a batch x (N, ...) as pieces of whole images, one matrix product
    (or a few) per piece, each piece on one thread (convolution: ``conv2d.py``): one piece per
    ``product_threads``; each piece's own work is then serial (see ``for_slices``). (Not two per thread
    as ``for_batch`` cuts: the mini net's 3x3 layers cost as much on 8 images as on 16, and its step
    measured 3-13% slower with pieces of 8, in alternating pairs.) Measured on the mini net's step at
    batch 32 (2 cores, 1 BLAS thread): 76 -> 61 ms."""
    N = x.shape[0]
    return max(1, ceil_div(N, product_threads(x))) if N else 1


def batch_chunk(n, sample_size, threads=None):
    """Samples per piece for ``for_batch``: about PIECES_PER_THREAD pieces per thread, each at least
    MIN_PIECE elements (or the whole batch) and at most CHUNK elements (or one sample)."""
    threads = num_threads() if threads is None else threads
    sample_size = max(1, sample_size)
    fewest = ceil_div(MIN_PIECE, sample_size)          # samples that make MIN_PIECE elements
    most = max(1, CHUNK // sample_size)                # samples that fit in CHUNK elements
    even = ceil_div(n, PIECES_PER_THREAD * threads)    # samples per piece for the wanted piece count
    return max(1, min(max(even, fewest), most, n))


def for_batch(xp, n, fn, sample_size):
    """Call ``fn(s)`` over slices ``s`` of a batch of ``n`` samples of ``sample_size`` elements each.

    On the CPU: pieces of whole samples (``batch_chunk``) shared by the threads as in ``for_slices``;
    a piece's rows stay in the cache while it is worked on (col2im of AlexNet's conv2 measured 2x
    faster on 2 cores). With CuPy: once, with the whole batch: the GPU is parallel already."""
    if xp.__name__ != "numpy":
        fn(slice(None))
    else:
        for_slices(n, fn, chunk=batch_chunk(n, sample_size))
