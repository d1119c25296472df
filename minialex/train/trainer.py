"""The training loop: epochs of momentum SGD, a test pass after each, a checkpoint after each.

What a run directory holds (``TrainConfig.out``):

    checkpoint.npz      weights, optimiser velocity, schedule, epoch/batch position, RNG state, history
    config.json         a record of the settings of checkpoint.npz (which holds them too; config.json is not read)
    metrics.jsonl       one JSON line per epoch: train loss, test loss, top-1/top-5 error, lr, seconds; the
                        last epoch's line also holds the final multi-view test ("final_test", see --final-test)
    curves.png          loss and error curves (needs matplotlib)
    conv1_filters.png   the conv1 kernels (the paper's Figure 3) and their change from the initial values

Exact resume: the data order and augmentation of epoch e come from ``(seed, e)`` alone (see
``minialex.data.loader``), dropout draws from minialex's generator whose state is checkpointed, and
the optimiser's velocity and the schedule are restored. So a run stopped (Ctrl-C, or fewer --epochs)
and resumed ends with exactly the weights of an uninterrupted run. A mid-epoch resume starts the
loader at the saved batch (``set_epoch(e, start_batch=b)``), without loading the batches before it.
(The position counts the batches trained; a batch whose every sample the dataset skipped is not
yielded, so after one of those the resume starts a batch early and trains one batch twice.)

A resume may change what does not alter the maths (--epochs, --device, ...), and, explicitly, the
learning rate and the schedule (--lr, --schedule, --step-size, --gamma, --patience) and --max-batches:
then the run is no longer bit-exact to an uninterrupted one, which it says; the change (epoch,
batch, old and new value) is recorded in the settings' ``changes`` list (config.json, checkpoint).
A new --lr is the lr from the resume point on, and a changed schedule starts from there.

Ctrl-C: the first one finishes the current batch, saves a checkpoint at that position and stops; a
second one aborts at once. A NaN or infinite loss stops the run before the bad update is applied;
the last checkpoint on disk (the end of the previous epoch) is kept as it is. A NaN or infinite test
loss or error (a divergence the training losses did not show yet) stops the run the same way, before
that epoch's checkpoint is written.

Under ``mpiexec -n K`` (``comm``, a ``minialex.distributed`` communicator): --batch-size is the global
batch and each rank trains its B/K shard of it; one allreduce per step averages the gradients
(``DataParallel``), so the K copies of the model stay equal; the test split is shared out too and its
counts summed. Rank 0 alone prints, writes the run directory and the checkpoints. The ranks agree
(in that allreduce) on the batch to stop after at a Ctrl-C, and see the same NaN. Dropout masks are
keyed by the sample (``minialex.keyed_random``), so K ranks train what one process trains, and a run
may resume with another K.
"""
import contextlib
import json
import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__, backend, keyed_random
from .. import functional as F
from ..blas_threads import get_blas_threads
from ..data import DataLoader
from ..distributed import Communicator, DataParallel, allreduce_sums
from ..models import alexnet
from ..optim import SGD, ConstantLR, CosineAnnealingLR, ReduceLROnPlateau, StepLR, caffe_param_groups
from ..parallel import num_threads
from ..tensor import Tensor, no_grad
from .checkpoint import CheckpointError, load_checkpoint, remove_stale_temp_files, save_checkpoint
from .console import progress_bar, write_line
from .interrupt import stop_on_sigint
from .config import ConfigError, TrainConfig
from .resume import change_note, differences, resumed_settings, schedule_settings
from .data import build_datasets, open_test_set
from .inference import predict_scores
from .metrics import ErrorMeter, format_epoch, format_final_test, write_metrics
from .plots import describe_change, save_curves, save_filter_grid

CHECKPOINT = "checkpoint.npz"
class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message says where and which checkpoint is kept."""


def _threads_in_use():
    """The thread counts that decide how the ops cut their work, and so the float32 rounding of a run."""
    return {"minialex": num_threads(), "blas": get_blas_threads()}


def build_model(config, spec, num_classes):
    return alexnet(config.model, num_classes, in_channels=spec["channels"],
                   input_size=spec["size"] if config.model == "mini" else None,
                   grouped=config.grouped, init=config.init, dropout=config.model_dropout)


def build_optimizer(config, model):
    if config.param_groups == "caffe":
        params = caffe_param_groups(model, config.lr, config.weight_decay)
    else:
        params = model.parameters()
    optimizer = SGD(params, config.lr, config.momentum, config.weight_decay)
    return optimizer, build_scheduler(config, optimizer)


def build_scheduler(config, optimizer, start_epoch=0):
    """The lr schedule of ``config`` over ``optimizer``'s groups, from their ``initial_lr`` (else ``lr``),
    for the epochs from ``start_epoch`` (a schedule changed on resume) to ``config.epochs``."""
    if config.schedule == "step":
        scheduler = StepLR(optimizer, config.step_size, config.gamma)
    elif config.schedule == "cosine":
        scheduler = CosineAnnealingLR(optimizer, max(1, config.epochs - start_epoch))
    elif config.schedule == "plateau":
        scheduler = ReduceLROnPlateau(optimizer, factor=config.gamma, patience=config.patience)
    else:
        scheduler = ConstantLR(optimizer)
    return scheduler


# Overflow and 0 * inf inside a diverging step: the loss and test checks below say so in one line,
# instead of a screenful of NumPy RuntimeWarnings before it.
def _diverging_quietly():
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


class Trainer:
    """Runs (or resumes) one training run; see the module docstring.

    ``Trainer(config)`` builds everything from a TrainConfig; ``Trainer.resume(path, **overrides)``
    rebuilds a run from its checkpoint. ``fit()`` returns "finished" or "interrupted".
    ``comm``: the communicator of a data-parallel run (default: one process).
    """

    def __init__(self, config, checkpoint=None, progress=None, comm=None):
        self.config = config.validate()
        self.comm = comm or Communicator()
        if config.batch_size % self.comm.size:
            raise ConfigError(f"--batch-size {config.batch_size} is the global batch, split over {self.comm.size} "
                              f"ranks: it must be a multiple of {self.comm.size}")
        if config.conv_algorithm is None:          # recorded, so that --resume keeps it
            try:
                config.conv_algorithm = F.current_algorithm()
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.progress = progress if self.comm.rank == 0 else False   # None: bars when stderr is a terminal
        self.say = write_line if self.comm.rank == 0 else (lambda line: None)
        if config.device == "cuda":
            try:
                backend.cupy_module()
            except RuntimeError as exc:
                raise ConfigError(str(exc)) from None
            self.comm.use_local_gpu()
        backend.manual_seed(config.seed)
        self.train_set, self.test_set, self.spec = build_datasets(config)
        self.classes = list(self.train_set.classes)
        self.model = build_model(config, self.spec, len(self.classes)).to(config.device)
        # the seed's initial conv1 weights (a resumed run rebuilds them the same way before loading its
        # checkpoint): conv1_filters.png shows what training changed
        self.conv1_initial = backend.to_device(self.model.layer("conv1").weight.data, "cpu").copy()
        self.optimizer, self.scheduler = build_optimizer(config, self.model)
        self.parallel = DataParallel(self.model.parameters(), self.comm) if self.comm.size > 1 else None
        shards = {"num_shards": self.comm.size, "shard": self.comm.rank}
        self.train_loader = DataLoader(self.train_set, config.batch_size, shuffle=True, seed=config.seed,
                                       prefetch=config.prefetch, return_indices=True, **shards)
        self.test_loader = self._test_loader(self.test_set)
        self.epoch, self.batch = 0, 0             # position of the next batch to train
        self.partial = {"loss_sum": 0.0, "count": 0, "seconds": 0.0}   # the current epoch so far
        self.history = []
        self.stop_requested = False     # stop after this batch (K ranks: agreed by all)
        self.stop_signalled = False     # Ctrl-C seen by this process
        self.step_samples = 0           # samples in the last global batch (K ranks: summed over them)
        self.out = Path(config.out) if config.out else self._default_out()
        config.out = str(self.out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out} is a file, not a directory: choose another --out")
        if checkpoint is not None:
            self._restore(checkpoint)
        else:
            if (self.out / CHECKPOINT).exists():
                raise ConfigError(f"{self.out} already holds a checkpoint: continue it with --resume {self.out}, "
                                  f"or choose another --out")

    def _test_loader(self, dataset):
        """Batches of a test split (single or multi-view), this rank's share of each: shuffled with a fixed
        seed, so that --max-batches tests on a sample of every class, and the same sample every time."""
        return DataLoader(dataset, self.config.batch_size, shuffle=True, seed=0, prefetch=self.config.prefetch,
                          num_shards=self.comm.size, shard=self.comm.rank)

    def _default_out(self):
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{self.config.model}-{self.config.dataset}-{stamp}"

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def resume(cls, path, progress=None, comm=None, **overrides):
        """Continue the run saved at ``path`` (a run directory or a checkpoint file).

        ``overrides`` may change what does not alter the maths: epochs, device, log_interval, prefetch,
        out, data_path (a dataset that moved); and, said in one line and recorded in the settings'
        ``changes``, lr, schedule, step_size, gamma, patience and max_batches (0: no limit). The output
        directory defaults to the checkpoint's. Stale temporary files of an interrupted save are removed.
        """
        ckpt = load_checkpoint(path)
        meta = ckpt["meta"]
        if "train" not in meta:
            raise CheckpointError(f"{ckpt['path']} has no training state to resume (was it written by the trainer?)")
        settings, changes = resumed_settings(meta, ckpt["path"], overrides)
        trainer = cls(TrainConfig.from_dict(settings), checkpoint=ckpt, progress=progress, comm=comm)
        freed, count = remove_stale_temp_files(ckpt["path"]) if trainer.comm.rank == 0 else (0, 0)
        if count:
            trainer.say(f"removed {count} stale temporary file{'s' * (count > 1)} ({freed / 1e6:.1f} MB) that an "
                   f"interrupted save left in {Path(ckpt['path']).parent}")
        if changes:
            trainer.say(change_note(changes, meta))
        return trainer

    def _restore(self, ckpt):
        meta = ckpt["meta"]
        if meta["model"] != self.model.config:
            raise CheckpointError(f"{ckpt['path']} holds a {meta['model'].get('variant')} model that does not match "
                                  f"this run's {self.model.config['variant']} "
                                  f"({differences(meta['model'], self.model.config)})")
        if meta["data"]["classes"] != self.classes:
            raise CheckpointError(f"{ckpt['path']} was trained on classes {meta['data']['classes'][:5]}..., "
                                  f"but the dataset has {self.classes[:5]}...")
        new_lrs = [group["lr"] for group in self.optimizer.param_groups]      # from this run's config
        try:
            self.model.load_state_dict(ckpt["model"])
        except ValueError as exc:
            raise CheckpointError(f"{ckpt['path']}: its weights do not fit the model "
                                  f"({'; '.join(line.strip() for line in str(exc).splitlines()[1:])})") from None
        saved = meta["train"]
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            changed = [name for name in schedule_settings(self.config.schedule)
                       if saved.get(name) != getattr(self.config, name)]
            if not changed:
                self.scheduler.load_state_dict(meta["scheduler"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt['path']}: its optimiser or schedule state does not fit this run "
                                  f"({type(exc).__name__}: {exc})") from None
        if saved.get("lr") != self.config.lr:            # --lr on resume: the lr from here on
            for group, lr in zip(self.optimizer.param_groups, new_lrs):
                group["lr"] = group["initial_lr"] = lr
        if changed and not any(group["lr"] > 0 for group in self.optimizer.param_groups):
            raise ConfigError(f"{ckpt['path']}: its {saved.get('schedule')} schedule has brought the lr to 0; to "
                              f"train it further give the lr to start again from: --lr LR")
        if changed:
            for group in self.optimizer.param_groups:    # the (new) schedule starts from the current lr
                group["initial_lr"] = group["lr"]
            self.scheduler = build_scheduler(self.config, self.optimizer, start_epoch=meta["epoch"])
        self._saved_settings = saved
        self._saved_threads, self._saved_ranks = meta.get("threads"), meta.get("ranks", 1)
        self.epoch, self.batch = meta["epoch"], meta["batch"]
        self.partial = meta["partial"]
        self.history = meta["history"]
        backend.set_rng_state(meta["rng"])

    def checkpoint_meta(self):
        return {
            "minialex": __version__,
            "saved": datetime.now().isoformat(timespec="seconds"),
            "model": self.model.config,
            "train": self.config.to_dict(),
            "data": {"classes": self.classes, "spec": self.spec},
            "epoch": self.epoch, "batch": self.batch, "partial": self.partial,
            "history": self.history,
            "scheduler": self.scheduler.state_dict(),
            "rng": backend.get_rng_state(),
            "ranks": self.comm.size,
            "threads": _threads_in_use(),
        }

    def save(self):
        if self.comm.rank != 0:         # the ranks hold the same state: rank 0 writes it
            return self.out / CHECKPOINT
        path = save_checkpoint(self.out / CHECKPOINT, self.model.state_dict(), self.optimizer.state_dict(),
                               self.checkpoint_meta())
        self._write_config_record()
        return path

    def _write_config_record(self):
        """config.json: the settings, rewritten with each checkpoint so that the two always agree (a
        resume whose first epoch fails leaves both as they were)."""
        (self.out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")

    # ------------------------------------------------------------------ one batch, one epoch
    def train_step(self, x, y):
        """Forward, loss, backward, SGD step on one batch; returns the loss as a float.

        Raises NonFiniteLossError (before any update) when the loss is NaN or infinite.
        Under mpiexec, (x, y) is this rank's shard and the loss returned is the global batch's.
        """
        if self.comm.size > 1:
            return self._train_shard(x, y)
        self.step_samples = len(y)
        with _diverging_quietly():
            logits = self.model(Tensor(x, device=self.config.device))
            loss = F.cross_entropy(logits, y)                 # y stays on the host: checked there, no sync
            self.optimizer.zero_grad()
            loss.backward()
            value = float(loss.item())    # the step's one host sync; on a GPU the backward is queued by now
            if not math.isfinite(value):
                raise NonFiniteLossError(value)
            self.optimizer.step()
        return value

    def _train_shard(self, x, y):
        """train_step on this rank's shard (perhaps empty): backward, then the gradients averaged over
        the ranks (DataParallel), then the update. The NaN check reads the allreduced loss, so every
        rank raises at the same batch; the Ctrl-C flags ride in the same allreduce."""
        self.optimizer.zero_grad()
        local = 0.0
        with _diverging_quietly():                           # as in train_step: one line, no warnings
            if len(y):
                loss = F.cross_entropy(self.model(Tensor(x, device=self.config.device)), y)
                loss.backward()
                local = float(loss.item())                   # read after the backward is queued
            totals = self.parallel.average_gradients(len(y), local * len(y), stop=self.stop_signalled)
            self.stop_requested, self.step_samples = totals.stop, totals.count
            if totals.count == 0:          # every sample of this batch was skipped
                return None
            value = totals.loss_sum / totals.count
            if not math.isfinite(value):
                raise NonFiniteLossError(value)
            self.optimizer.step()
        return value

    def _batches_this_epoch(self, loader):
        n = len(loader)
        return n if self.config.max_batches is None else min(n, self.config.max_batches)

    def train_epoch(self, bar_disable):
        """Train from (self.epoch, self.batch) to the end of the epoch, or until a stop is requested."""
        config, loader = self.config, self.train_loader
        total = self._batches_this_epoch(loader)
        loader.set_epoch(self.epoch, start_batch=self.batch)   # resuming mid-epoch: the rest of its order
        self.model.train()
        bar = progress_bar(total=total, initial=self.batch, desc=f"epoch {self.epoch + 1}", leave=False,
                        unit="batch", disable=bar_disable)
        start = time.perf_counter()
        try:
            for b, (x, y, indices) in enumerate(loader, start=self.batch):
                if b >= total or self.stop_requested:
                    break
                try:                   # dropout: each row's mask keyed by its sample, not by the process
                    with keyed_random.samples(indices, seed=config.seed, epoch=self.epoch):
                        loss = self.train_step(x, y)
                except NonFiniteLossError as exc:
                    raise NonFiniteLossError(self._nan_message(exc.args[0], b)) from None
                self.batch = b + 1
                if loss is not None:
                    self.partial["loss_sum"] += loss * self.step_samples
                    self.partial["count"] += self.step_samples
                running = self.partial["loss_sum"] / max(1, self.partial["count"])
                bar.update(1)
                bar.set_postfix_str(f"loss {running:.4f}")
                if config.log_interval and self.batch % config.log_interval == 0:
                    self.say(f"epoch {self.epoch + 1} batch {self.batch}/{total}  running loss {running:.4f}")
        finally:
            bar.close()
            self.partial["seconds"] += time.perf_counter() - start

    def _nan_message(self, value, b=None, what="loss"):
        kept = self.out / CHECKPOINT
        lr = self.optimizer.param_groups[0]["lr"]
        if kept.exists():
            where = f"the last good checkpoint, {kept} ({self._saved_position()}), is kept"
            advice = (f"Try a lower --lr (now {lr:g}): python -m minialex train --resume {self.out} "
                      f"--lr {lr / 10:g}, or start again.")
        else:
            where, advice = "no checkpoint was written", f"Try a lower --lr (now {lr:g})."
        at = (f"at epoch {self.epoch + 1}, batch {b + 1}" if b is not None else
              f"after epoch {self.epoch + 1} (its training loss was finite)")
        return f"the {what} became {value} {at}: training stopped; {where}. {advice}"

    def _saved_position(self):
        """Where the checkpoint on disk stands: "end of epoch E", or "epoch E+1, after batch B" for a
        mid-epoch (Ctrl-C) save."""
        try:
            meta = load_checkpoint(self.out / CHECKPOINT, meta_only=True)["meta"]
        except CheckpointError:
            return "position unknown"
        if meta.get("batch"):
            return f"epoch {meta['epoch'] + 1}, after batch {meta['batch']}"
        return f"end of epoch {meta['epoch']}"

    @no_grad()
    def evaluate(self, loader=None):
        """Mean loss and top-1/top-5 error of the model on ``loader`` (the test split by default). A loader of
        multi-view batches (B, V, C, H, W) gives the errors of the averaged softmax, and no loss."""
        loader = loader or self.test_loader
        loader.set_epoch(0)
        self.model.eval()
        meter = ErrorMeter(len(self.classes))
        total = self._batches_this_epoch(loader)
        for b, (x, y) in enumerate(loader):
            if b >= total:
                break
            if len(y) == 0:           # this rank's shard of the batch is empty
                continue
            with _diverging_quietly():
                if x.ndim == 5:        # (B, V, C, H, W): the softmax averaged over each image's V views
                    meter.update(predict_scores(self.model, x, self.config.device, batch_size=len(x) * x.shape[1]), y)
                    continue
                logits = self.model(Tensor(x, device=self.config.device))
                loss = F.cross_entropy(logits, y).item()
                meter.update(logits.numpy(), y, loss)
        if loader.num_shards > 1:     # each rank tested its shards: sum the counts
            meter.count, meter.top1, meter.top5, meter.loss_sum = allreduce_sums(
                self.comm, [meter.count, meter.top1, meter.top5, meter.loss_sum])
            meter.count, meter.top1, meter.top5 = int(meter.count), int(meter.top1), int(meter.top5)
        self.model.train()
        return meter.result()

    # ------------------------------------------------------------------ the run
    def fit(self):
        """Train up to ``config.epochs``; returns "finished" or "interrupted" (a checkpoint is saved either way).

        Raises NonFiniteLossError when the loss blows up.
        """
        config = self.config
        if self.epoch >= config.epochs:
            self.say(f"{self.out} is already complete: {self.epoch} of {config.epochs} epochs trained. To train "
                   f"it further: python -m minialex train --resume {self.out} --epochs N (N > {self.epoch})")
            return "complete"
        if self.parallel is not None:   # K equal copies of the model to start from
            self.parallel.broadcast_parameters()
        if self.comm.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self._check_config_record()
            if not (self.out / CHECKPOINT).exists():      # a new run; a resumed one rewrites it with its saves
                self._write_config_record()
        images = f"{len(self.train_set)} train / {len(self.test_set)} test images"
        if config.max_batches is not None:
            used = [min(config.max_batches * config.batch_size, len(dataset))
                    for dataset in (self.train_set, self.test_set)]
            images += f", of which --max-batches {config.max_batches} uses at most {used[0]} / {used[1]} per epoch"
        ranks = f" x {self.comm.size} ranks" if self.comm.size > 1 else ""
        self.say(f"training {config.model} AlexNet on {config.dataset} ({images}, {len(self.classes)} classes) on "
                 f"{config.device}{ranks}; run directory {self.out}")
        if self.epoch or self.batch:
            limit = (f" (--max-batches {config.max_batches} is the run's: --max-batches N changes it, "
                     f"--max-batches 0 lifts it)" if config.max_batches is not None else "")
            self.say(f"resuming at epoch {self.epoch + 1}, batch {self.batch + 1}{limit}")
            saved_threads, now = getattr(self, "_saved_threads", None), _threads_in_use()
            saved_ranks = getattr(self, "_saved_ranks", 1)
            if saved_ranks != self.comm.size:                                # (a hostile value: just different)
                self.say(f"note: the run was trained as {saved_ranks} rank(s), this one runs as {self.comm.size}: "
                         f"each rank sums its share of the batch, so the rest of the run rounds differently from an "
                         f"uninterrupted one (--ranks {saved_ranks} continues it exactly)")
            elif isinstance(saved_threads, dict) and saved_threads != now:
                self.say(f"note: the run was trained with {saved_threads.get('minialex')} threads and "
                         f"{saved_threads.get('blas')} BLAS thread(s), this process has {now['minialex']} and "
                         f"{now['blas']}: the ops cut their work by the thread count, so the rest of the run rounds "
                         f"differently from an uninterrupted one (MINIALEX_NUM_THREADS and --threads as before "
                         f"continue it exactly)")
        bar_disable = None if self.progress is None else not self.progress
        epochs_bar = progress_bar(total=config.epochs, initial=self.epoch, desc="epochs", unit="epoch",
                               disable=bar_disable)
        try:
            with stop_on_sigint(self), F.conv_algorithm(config.conv_algorithm):
                while self.epoch < config.epochs:
                    self.train_epoch(bar_disable)
                    if not self.stop_requested:
                        self._end_epoch()               # test, schedule, checkpoint, reports
                        epochs_bar.update(1)
                    if self.stop_requested and self.epoch < config.epochs:
                        path = self.save()
                        self.write_curves()
                        self.say(f"interrupted: checkpoint saved to {path} (epoch {self.epoch + 1}, batch "
                               f"{self.batch}); continue with: python -m minialex train --resume {self.out}")
                        return "interrupted"
        except NonFiniteLossError:
            with contextlib.suppress(Exception):   # the divergence on its way out is the one to report
                self.write_curves()                # (other errors, a full disk say, write nothing more)
            raise
        finally:
            epochs_bar.close()
        self.final_test()
        self.write_curves()
        if getattr(self, "conv1_change", None):
            self.say(describe_change(self.conv1_change) + f" ({self.out / 'conv1_filters.png'})")
        return "finished"

    def _check_config_record(self):
        """config.json is a record of the settings, written by the trainer; it is not read. On resume,
        say so when it was edited, naming what differs from the checkpoint's settings (which are kept)."""
        path = self.out / "config.json"
        saved = getattr(self, "_saved_settings", None)
        if saved is None or not path.exists():
            return
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            write_line(f"note: {path} is not valid JSON ({exc}); it is only a record of the settings (change one with "
                   f"its flag, e.g. --lr, on --resume): rewriting it from the checkpoint's")
            return
        if record != saved:
            edited = (", ".join(f"{k}: {record.get(k)!r}" for k in {**saved, **record} if saved.get(k) != record.get(k))
                      if isinstance(record, dict) else repr(record)[:60])
            write_line(f"note: {path} was edited ({edited}); it is only a record of the settings, not read: the run "
                   f"keeps the checkpoint's (change one with its flag, e.g. --lr, on --resume) and it is rewritten")

    def _end_epoch(self):
        start = time.perf_counter()
        test = self.evaluate()
        for key in ("loss", "top1_error", "top5_error"):
            if test[key] is not None and not math.isfinite(test[key]):
                raise NonFiniteLossError(self._nan_message(test[key], what=f"test {key.replace('_', ' ')}"))
        lr = self.optimizer.param_groups[0]["lr"]
        record = {
            "epoch": self.epoch + 1,
            "train_loss": self.partial["loss_sum"] / max(1, self.partial["count"]),
            "test_loss": test["loss"],
            "test_top1_error": test["top1_error"],
            "test_top5_error": test["top5_error"],
            "lr": lr,
            "seconds": self.partial["seconds"] + time.perf_counter() - start,
        }
        self.history.append(record)
        self.scheduler.step(test["top1_error"])
        self.epoch, self.batch = self.epoch + 1, 0
        self.partial = {"loss_sum": 0.0, "count": 0, "seconds": 0.0}
        self.save()
        self.write_reports()
        self.say(format_epoch(record, self.config.epochs))

    def final_test(self):
        """The multi-view test of ``config.final_test_views`` after the last epoch (the paper's, Sec. 4.1: the
        softmax averaged over crops of each test image), said in one line and kept in the last epoch's record
        as "final_test"; the checkpoint is saved again so that its history matches metrics.jsonl."""
        views = self.config.final_test_views
        if views == "single" or not self.history:
            return
        loader = self._test_loader(open_test_set(self.spec, self.config.data_path, views))
        with F.conv_algorithm(self.config.conv_algorithm):
            result = self.evaluate(loader)
        if result["top1_error"] is None:
            return
        record = self.history[-1]
        record["final_test"] = {"views": views, "images": result["samples"], "top1_error": result["top1_error"],
                                "top5_error": result["top5_error"]}
        self.save()
        if self.comm.rank == 0:                  # the record changed, not the weights: conv1_filters.png stands
            write_metrics(self.out / "metrics.jsonl", self.history)
        self.say(format_final_test(record))

    def write_reports(self):
        """metrics.jsonl and conv1_filters.png, after every epoch (rank 0 writes them)."""
        if self.comm.rank != 0:
            return
        write_metrics(self.out / "metrics.jsonl", self.history)
        conv1 = self.model.layer("conv1").weight
        self.conv1_change = save_filter_grid(self.out / "conv1_filters.png", backend.to_device(conv1.data, "cpu"),
                                             self.conv1_initial)

    def write_curves(self):
        """curves.png (when matplotlib is there), once the run stops: finished, interrupted or diverged.
        Not after every epoch: matplotlib takes 0.3-2 s a figure, up to 6% of the main job."""
        if self.comm.rank != 0 or not self.history:
            return
        if not save_curves(self.out / "curves.png", self.history):
            write_line("matplotlib is not installed: skipping curves.png (pip install 'minialex[plot]')")
