"""Communicators: who this process is among the K that train together, and the two collective calls
data parallelism needs, on one flat buffer each.

    comm = world()                 # MPI's COMM_WORLD under mpiexec, else the one-process communicator
    comm.rank, comm.size           # this process is rank r of K (0 <= r < K)
    comm.local_rank                # its rank among the processes on this machine: which GPU it drives
    comm.allreduce(buffer)         # in place: every rank's buffer becomes the element-wise sum over the ranks
    comm.broadcast(buffer)         # in place: every rank's buffer becomes rank 0's

A buffer is one contiguous NumPy or CuPy array. MPI (through mpi4py) moves NumPy buffers. CuPy buffers
go through NCCL (``cupy.cuda.nccl``) when CuPy has it and every rank on a machine has a GPU of its own;
otherwise through host memory and MPI (a copy to the host and back). No MPI library? ``pip install
'minialex[mpi]'`` brings mpi4py and MPICH, mpiexec included.

Faults: a rank that stops calling the collectives leaves the others waiting for ever, so a rank that
fails calls :meth:`MPICommunicator.abort` (MPI_Abort), which ends every rank of the job.
"""
import os
import stat
import sys
import time

import numpy as np

from .. import backend

# The rank, as the launchers (mpiexec of MPICH and Intel MPI, Open MPI, PMIx and Slurm's srun) set it in
# each process they start.
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def launched_by_mpi():
    """True in a process that mpiexec (or srun) started; MPI is then imported, otherwise never."""
    return any(name in os.environ for name in LAUNCHER_RANK_VARIABLES)


def launcher_rank():
    """This process's rank as its launcher says (0 when none did), read without starting MPI."""
    for name in LAUNCHER_RANK_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    return 0


def wait_until_read(streams, timeout):
    """Wait (at most ``timeout`` seconds) until whoever reads these streams' pipes has read them.

    mpiexec forwards a rank's output from the pipe it reads it from; MPI_Abort ends the job at once, and
    a line still in the pipe is lost with it (under load, now and then: an error line that never
    appeared). Streams that are not pipes (a terminal, a file) are not waited for."""
    try:
        import fcntl
        import termios
    except ImportError:                 # not a POSIX system: nothing to ask
        return
    pipes = []
    for stream in streams:
        try:
            fd = stream.fileno()
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                pipes.append(fd)
        except (AttributeError, OSError, ValueError):    # replaced or closed streams
            pass
    deadline = time.monotonic() + timeout
    while pipes and time.monotonic() < deadline:
        unread = bytearray(4)
        pipes = [fd for fd in pipes
                 if fcntl.ioctl(fd, termios.FIONREAD, unread) == 0 and int.from_bytes(unread, sys.byteorder) > 0]
        if pipes:
            time.sleep(0.01)


class Communicator:
    """One process alone: rank 0 of 1. The collectives have nothing to do; the MPI one has the same methods."""

    rank, size, local_rank, local_size = 0, 1, 0, 1

    def allreduce(self, buffer):
        return buffer

    def broadcast(self, buffer, root=0):
        return buffer

    def allgather_object(self, obj):
        """A list with every rank's ``obj`` (any picklable object), in rank order."""
        return [obj]

    def use_local_gpu(self):
        """Make this rank's GPU (number ``local_rank``) the current one; call before the first CuPy array."""

    def abort(self, status):
        """End every rank of the job with ``status``; does not return."""
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    def __repr__(self):
        return f"{type(self).__name__}(rank {self.rank} of {self.size}, local rank {self.local_rank})"


class MPICommunicator(Communicator):
    """The ranks of an MPI communicator (default MPI.COMM_WORLD), through mpi4py."""

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError("this process was started by mpiexec, but mpi4py is not installed: "
                              "pip install 'minialex[mpi]'") from exc
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)   # the ranks on this machine
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self._nccl = None            # the NCCL communicator, made on the first CuPy collective
        self._nccl_checked = False

    # ------------------------------------------------------------------ collectives
    def allreduce(self, buffer):
        if backend.is_cupy_array(buffer):
            nccl = self._nccl_communicator()
            if nccl is not None:
                from cupy.cuda import nccl as lib
                stream = backend.cupy_module().cuda.get_current_stream().ptr
                nccl.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, _nccl_type(buffer.dtype),
                               lib.NCCL_SUM, stream)
                return buffer
            host = buffer.get()                                  # through host memory
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            buffer.set(host)
            return buffer
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return buffer

    def broadcast(self, buffer, root=0):
        if backend.is_cupy_array(buffer):
            nccl = self._nccl_communicator()
            if nccl is not None:
                stream = backend.cupy_module().cuda.get_current_stream().ptr
                nccl.broadcast(buffer.data.ptr, buffer.data.ptr, buffer.size, _nccl_type(buffer.dtype), root,
                               stream)
                return buffer
            host = buffer.get()
            self.comm.Bcast(host, root=root)
            buffer.set(host)
            return buffer
        self.comm.Bcast(buffer, root=root)
        return buffer

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def abort(self, status):
        sys.stdout.flush()
        sys.stderr.flush()
        wait_until_read((sys.stdout, sys.stderr), timeout=2.0)
        self.comm.Abort(status)
        os._exit(status)             # MPI_Abort may return before the launcher has ended this process

    # ------------------------------------------------------------------ GPUs
    def use_local_gpu(self):
        cupy = backend.cupy_module()
        count = cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(self.local_rank % count).use()

    def _nccl_communicator(self):
        """NCCL between the ranks' GPUs, or None where CuPy lacks NCCL or ranks share a GPU (NCCL refuses
        two ranks on one device). Collective: every rank decides the same way, then all or none create it."""
        if not self._nccl_checked:
            self._nccl_checked = True
            usable = _nccl_module() is not None and \
                self.local_size <= backend.cupy_module().cuda.runtime.getDeviceCount()
            if all(self.comm.allgather(usable)):
                lib = _nccl_module()
                uid = lib.get_unique_id() if self.rank == 0 else None
                uid = self.comm.bcast(uid, root=0)
                self._nccl = lib.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl


def _nccl_module():
    """``cupy.cuda.nccl`` when this CuPy was built with NCCL, else None."""
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", True) else None


def _nccl_type(dtype):
    lib = _nccl_module()
    types = {np.dtype(np.float32): lib.NCCL_FLOAT32, np.dtype(np.float64): lib.NCCL_FLOAT64}
    if np.dtype(dtype) not in types:
        raise TypeError(f"allreduce over NCCL: unsupported dtype {dtype}")
    return types[np.dtype(dtype)]


_world = None


def world():
    """The communicator of this process: MPI's COMM_WORLD when mpiexec started it, else a Communicator
    of one. Made once; under mpiexec, importing mpi4py initialises MPI."""
    global _world
    if _world is None:
        _world = MPICommunicator() if launched_by_mpi() else Communicator()
    return _world
