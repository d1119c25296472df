"""``minialex train --ranks K``: start K data-parallel ranks on this machine by running the same command
again under ``mpiexec -n K`` (MPICH's, from the ``mpi`` extra). On the CPU the default is ``--ranks auto``.

Why several processes on one machine: within one process, minialex's threads share each op's work and
meet after every op (``minialex.parallel``), and the Python between the ops runs one thread at a time.
K ranks run the whole step side by side instead, each on 1/K of the batch with one thread, and meet once
a step, in the gradients' allreduce (``data_parallel.py``); they train the same model (the masks and
crops are keyed by the sample, not by the rank), up to float32 round-off. Measured on the 2-core machine
(benchmarks/RESULTS.md, "Issue 14, eighth session"): the main job shortened to 3 epochs ran at 689 images/s as
2 ranks against 420 as one process with 2 threads (three alternating rounds, 1.49-1.69x per round).

How: the process replaces itself (``os.execv``) with ``mpiexec -n K <this python> -m minialex <the same
arguments>``. Its process id, its exit status and its signals are then mpiexec's, which passes a Ctrl-C to
every rank (each finishes the batch and rank 0 saves the checkpoint, as in one process). The flags were
checked before, so a mistake on the command line is still one line from one process.

    --ranks auto (the default)   CPU, mpi4py and mpiexec installed, not already under a launcher, and
                                 neither MINIALEX_NUM_THREADS nor --threads set (``cli._start_ranks``):
                                 ``auto_ranks`` (one per CPU, each with at least MIN_IMAGES_PER_RANK
                                 images of the batch); a resumed run: the ranks it was trained with
    --ranks 1                    one process, minialex's threads (what runs without the mpi extra)
    --ranks K                    K ranks (an error without mpi4py)
$MINIALEX_RANKS sets the default (the test suite sets 1: its runs compare against one process).
"""
import importlib.util
import os
import shutil
import sys

from ..parallel import available_cpus
from .communicator import launched_by_mpi

# Fewer images make a rank's products too narrow: measured on the 2-core machine (the mini net's step, one
# thread, medians of 37 steps): per image 2.3-2.7 ms on 16 images, 2.6-2.8 on 8, 3.3 on 4, 4.5-4.7 on 2.
MIN_IMAGES_PER_RANK = 8


def mpiexec_path():
    """mpiexec beside this Python (a virtual environment's, from the mpich wheel), else on PATH; or None."""
    return shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


def mpi_missing():
    """Why K ranks cannot be started here (a sentence), or None when they can."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'minialex[mpi]')"
    if mpiexec_path() is None:
        return "there is no mpiexec beside this Python or on PATH (pip install 'minialex[mpi]')"
    return None


def auto_ranks(batch_size, cpus):
    """The most ranks, at most one per CPU and one per MIN_IMAGES_PER_RANK images, that divide the batch."""
    for k in range(min(cpus, batch_size // MIN_IMAGES_PER_RANK), 1, -1):
        if batch_size % k == 0:
            return k
    return 1


def ranks_to_start(requested, device, batch_size, resumed_ranks=None):
    """How many ranks to start: 1 (train in this process) or K > 1 (``relaunch``).

    ``requested``: "auto" or a positive int (--ranks); ``batch_size``: the run's global batch;
    ``resumed_ranks``: what a resumed run's checkpoint records (None for a new run). Raises ValueError
    with a one-line message for a K that cannot be started."""
    if launched_by_mpi():                       # mpiexec already started the ranks: the trainer checks K
        return 1
    if requested == "auto":
        if device != "cpu" or mpi_missing():
            return 1
        if isinstance(resumed_ranks, int) and not isinstance(resumed_ranks, bool) and 1 <= resumed_ranks <= available_cpus():
            return resumed_ranks               # the same ranks continue the run exactly
        return auto_ranks(batch_size, available_cpus())
    if requested > 1:
        missing = mpi_missing()
        if missing:
            raise ValueError(f"--ranks {requested} starts {requested} processes under mpiexec, but {missing}")
    return requested


def relaunch(argv, ranks):
    """Replace this process with ``mpiexec -n ranks <python> -m minialex *argv``; does not return."""
    mpiexec = mpiexec_path()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(mpiexec, [mpiexec, "-n", str(ranks), sys.executable, "-m", "minialex", *argv])
