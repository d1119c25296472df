"""Data parallelism: K processes, one model each, one shard of every batch each, gradients averaged.

Why averaging shard gradients gives the big batch's gradient. The loss of a batch of N samples is the
mean of the per-sample losses, so its gradient is the mean of the per-sample gradients:

    g = (1/N) sum_i grad l_i.
    Split the batch into shards S_1..S_K of n_k samples (sum n_k = N). Each rank computes its shard's
    mean g_k = (1/n_k) sum_{i in S_k} grad l_i, and
    g = (1/N) sum_k sum_{i in S_k} grad l_i = sum_k (n_k / N) g_k,       = (1/K) sum_k g_k when n_k = N/K.

So after one allreduce (a sum over the ranks) of n_k g_k, and a division by N, every rank holds exactly
the gradient of the whole batch (up to float32 round-off in the order of the sums), applies the same
update with any optimiser, and the K copies of the model stay equal. This holds for every layer because
no layer of AlexNet mixes samples in the forward pass (dropout's mask is per sample, see
``minialex.keyed_random``; batch normalisation would not be, and is not here).

One flat buffer per step (as ChainerMN packs its gradients, and PyTorch DDP its buckets): every
gradient, scaled by n_k, end to end, then three numbers, all summed in a single allreduce:

    [ grad_0 * n_k | grad_1 * n_k | ... | n_k | loss_k * n_k | stop_k ]      (float32, ~sum of parameter sizes)

giving the batch's gradient, its sample count, its mean loss and whether any rank was asked to stop
(Ctrl-C), so every rank stops after the same batch.
"""
from collections import namedtuple

import numpy as np

from .. import backend
from ..parallel import available_cpus

StepTotals = namedtuple("StepTotals", "count loss_sum stop")
SCALARS = 3                  # count, loss_sum, stop at the end of the buffer


class DataParallel:
    """Keeps the parameters ``params`` equal on every rank of ``comm``.

    ``broadcast_parameters()``: rank 0's values to every rank (at the start, so K equal copies).
    ``average_gradients(count, loss_sum, stop)``: after ``backward`` on this rank's ``count`` samples
    and before ``optimizer.step()``: every ``param.grad`` becomes the gradient of the whole batch (a
    parameter without a gradient here, e.g. on a rank whose shard was empty, gets one). Returns the
    StepTotals over the ranks. Works with any optimiser, since it only rewrites ``.grad``.
    """

    def __init__(self, params, comm):
        self.params = list(params)
        self.comm = comm
        self.sizes = [int(p.data.size) for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)   # (P + 1,)
        self._buffer = None

    def _flat(self):
        """The reused flat buffer: every parameter's elements, then SCALARS numbers; on the parameters' device."""
        if self._buffer is None:
            first = self.params[0].data
            self._buffer = backend.xp_of(first).empty(int(self.offsets[-1]) + SCALARS, dtype=first.dtype)
        return self._buffer

    def broadcast_parameters(self, root=0):
        flat = self._flat()
        for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            flat[start:stop] = p.data.reshape(-1)
        self.comm.broadcast(flat, root)
        for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            p.data[...] = flat[start:stop].reshape(p.data.shape)

    def average_gradients(self, count, loss_sum=0.0, stop=False):
        flat = self._flat()
        xp = backend.xp_of(flat)
        for p, start, stop_ in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            if p.grad is None or count == 0:
                flat[start:stop_] = 0
            else:
                xp.multiply(p.grad.reshape(-1), count, out=flat[start:stop_])         # n_k g_k
        flat[-SCALARS:] = xp.asarray([count, loss_sum, float(bool(stop))], dtype=flat.dtype)
        self.comm.allreduce(flat)                                                      # sum over the ranks
        total_count, total_loss, stops = (float(v) for v in flat[-SCALARS:].tolist())
        if total_count > 0:
            for p, start, stop_ in zip(self.params, self.offsets[:-1], self.offsets[1:]):
                if p.grad is None:
                    p.grad = xp.empty_like(p.data)
                xp.divide(flat[start:stop_].reshape(p.data.shape), total_count, out=p.grad)   # g = sum / N
        return StepTotals(int(round(total_count)), total_loss, stops > 0)


def allreduce_sums(comm, values):
    """The sums over the ranks of a few numbers (float64, on the host): counts and totals of an evaluation."""
    buffer = np.asarray(values, dtype=np.float64).copy()
    return comm.allreduce(buffer).tolist()


def cores_per_rank(comm):
    """The CPUs this process may use, shared among the ranks on its machine (at least 1)."""
    return max(1, available_cpus() // comm.local_size)

