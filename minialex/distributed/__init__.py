"""minialex.distributed: data-parallel training over MPI, with NCCL between GPUs.

    mpiexec -n 2 python -m minialex train --batch-size 32      # two processes, 16 images each per step
    python -m minialex train --ranks 2                         # the same, mpiexec started by minialex

K processes (ranks) each hold a whole copy of the model. Every step, each rank takes its shard of the
global batch (``DataLoader(num_shards=K, shard=rank)``), runs forward and backward on it, and one
allreduce averages the gradients (:class:`DataParallel`); then every rank applies the same update, so
the copies stay equal. The pieces, in the order a run uses them:

    communicator.py    world(): rank, size, local rank; allreduce and broadcast of one flat buffer
                       (MPI through mpi4py; NCCL through CuPy for GPU arrays)
    data_parallel.py   DataParallel: parameters broadcast from rank 0; gradients averaged, packed in
                       one buffer, for any optimiser; why the average equals the big batch's gradient
    faults.py          a failing rank stops every rank (MPI_Abort) and says so in one line
    launch.py          `train --ranks K` (and, on the CPU, the default --ranks auto): the command runs
                       itself again under mpiexec -n K; why K ranks beat K threads on one machine

What a sample sees (its crop, its flip, its dropout mask) is keyed by the seed, the epoch and the
sample (``minialex.keyed_random``, ``minialex.data.loader``), never by the rank, so K ranks train the
same model as one process with the same global batch, up to float32 round-off.

Contrast: the paper's two GPUs (Krizhevsky et al. 2012, Sec. 3.2) split the *model* (half the kernels
of each layer on each GPU, talking only at certain layers); here each rank holds the whole model and
the *batch* is split. Notebook 09 works through both.
"""
from .communicator import Communicator, MPICommunicator, launched_by_mpi, world
from .data_parallel import DataParallel, StepTotals, allreduce_sums, cores_per_rank
from .faults import setup_together, stop_together

__all__ = ["Communicator", "MPICommunicator", "launched_by_mpi", "world", "DataParallel", "StepTotals",
           "allreduce_sums", "cores_per_rank", "setup_together", "stop_together"]
