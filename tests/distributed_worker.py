"""Run under mpiexec by tests/test_distributed.py (not a test module itself).

    mpiexec -n 2 python tests/distributed_worker.py collectives
    mpiexec -n 2 python tests/distributed_worker.py fail RANK BATCH raise|kill STAMP -- <minialex train flags>

``collectives``: allreduce, broadcast and DataParallel checked on every rank against what one process
computes; prints "rank r ok". ``fail``: `minialex train` in which rank RANK raises a RuntimeError (or
SIGKILLs itself) when it reaches global batch BATCH of the second epoch, after writing the time to
the file STAMP.
"""
import os
import signal
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minialex  # noqa: E402
from minialex import Tensor  # noqa: E402
from minialex import functional as F  # noqa: E402
from minialex.distributed import DataParallel, world  # noqa: E402
from minialex.models import alexnet  # noqa: E402


def collectives():
    comm = world()
    assert comm.size > 1, "run me under mpiexec -n K, K > 1"
    buf = np.arange(5, dtype=np.float32) + comm.rank                     # rank r holds [r, r+1, ..., r+4]
    comm.allreduce(buf)
    K = comm.size
    np.testing.assert_array_equal(buf, K * np.arange(5) + K * (K - 1) / 2)
    buf = np.full(3, float(comm.rank))
    comm.broadcast(buf)
    np.testing.assert_array_equal(buf, 0.0)
    assert comm.local_rank == comm.rank and comm.local_size == K          # one machine

    # DataParallel: shards of unequal size (10 samples over K ranks) give the whole batch's gradient
    minialex.manual_seed(comm.rank)                                      # different weights on purpose
    model = alexnet("mini", 10, in_channels=1, input_size=28, dropout=0.0)
    dp = DataParallel(model.parameters(), comm)
    dp.broadcast_parameters()                                            # now rank 0's everywhere
    minialex.manual_seed(0)
    reference = alexnet("mini", 10, in_channels=1, input_size=28, dropout=0.0)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    x = np.random.default_rng(1).standard_normal((10, 1, 28, 28)).astype(np.float32)
    y = np.arange(10) % 10
    start, stop = comm.rank * 10 // K, (comm.rank + 1) * 10 // K
    loss = F.cross_entropy(model(Tensor(x[start:stop])), y[start:stop])
    loss.backward()
    totals = dp.average_gradients(stop - start, float(loss.item()) * (stop - start), stop=comm.rank == 1)
    whole = F.cross_entropy(reference(Tensor(x)), y)
    whole.backward()
    assert totals.count == 10 and totals.stop
    assert abs(totals.loss_sum / totals.count - float(whole.item())) < 1e-5
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)
    # one write per line: under PYTHONUNBUFFERED, print() writes the text and its newline separately, and
    # mpiexec may then interleave the other rank's line between them ("rank 1 okrank 0 ok\n\n")
    sys.stdout.write(f"rank {comm.rank} ok\n")
    sys.stdout.flush()


def fail(rank, batch, how, stamp, argv):
    from minialex import cli
    from minialex.train import Trainer
    original = Trainer.train_step

    def train_step(self, x, y):
        if self.comm.rank == rank and self.epoch == 1 and self.batch == batch:
            with open(stamp, "w") as f:
                f.write(repr(time.time()))
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure at batch {batch}")
        return original(self, x, y)
    Trainer.train_step = train_step
    sys.exit(cli.main(argv))


if __name__ == "__main__":
    if sys.argv[1] == "collectives":
        collectives()
    else:
        rest = sys.argv[sys.argv.index("--") + 1:]
        fail(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], rest)
