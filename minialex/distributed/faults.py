"""What a rank does when something goes wrong, so that K processes never hang and say it once.

Two phases of a run, two rules:

- Setup (parse the flags, open the data, build the model, read a checkpoint): nothing collective has
  happened yet, so the ranks can still agree. :func:`setup_together` runs the setup on every rank and
  gathers who failed. A mistake every rank makes alike (a bad flag) is reported by rank 0 exactly as
  one process would report it; a failure of some ranks only is one line naming the first of them.
  Every rank then exits with status 2.
- Training: a rank that fails may leave the others waiting in an allreduce it will never join, so
  :func:`stop_together` prints one line naming the rank and its error and calls MPI_Abort, which
  ends every rank of the job within a second or so (status 1). A rank killed outright (SIGKILL, out of
  memory) cannot say anything; mpiexec notices and ends the others. Errors every rank raises at the same
  point (the ``agreed`` types: a NaN loss, seen by all ranks in the allreduced loss) are reported by
  rank 0 alone and end every rank normally.

Checkpoints are written by rank 0 with an atomic rename, so whichever rank dies when, the checkpoint on
disk is the last complete one.
"""
import sys
from contextlib import contextmanager


def _one_line(exc):
    return str(exc).replace("\n", " ") or type(exc).__name__


def setup_together(comm, build):
    """``build()`` on every rank; its result when every rank succeeded. See the module docstring."""
    try:
        result, error = build(), None
    except Exception as exc:
        result, error = None, exc
    if comm.size == 1:
        if error is not None:
            raise error
        return result
    reports = comm.allgather_object(None if error is None else f"{type(error).__name__}: {_one_line(error)}")
    failed = [rank for rank, report in enumerate(reports) if report is not None]
    if not failed:
        return result
    if len(failed) == comm.size and len(set(reports)) == 1:        # the same mistake everywhere
        if comm.rank == 0:
            raise error                                              # reported as by one process
        raise SystemExit(2)
    if comm.rank == failed[0]:
        print(f"minialex: error: rank {comm.rank} of {comm.size}: {_one_line(error)}", file=sys.stderr, flush=True)
    raise SystemExit(2)


@contextmanager
def stop_together(comm, agreed=()):
    """Around the collective part of a run; see the module docstring."""
    if comm.size == 1:
        yield
        return
    try:
        yield
    except agreed:
        if comm.rank == 0:
            raise
        raise SystemExit(1) from None
    except KeyboardInterrupt:                   # a second Ctrl-C: abort now
        print(f"minialex: interrupted (rank {comm.rank} of {comm.size})", file=sys.stderr, flush=True)
        comm.abort(130)
    except Exception as exc:
        print(f"minialex: error: rank {comm.rank} of {comm.size}: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr, flush=True)
        comm.abort(1)
