"""The dataset protocol and the DataLoader that turns a dataset into batches.

Dataset protocol
----------------
A dataset has ``len(dataset)``, the attributes ``classes`` (list of class
names) and ``num_classes``, and two ways to read sample ``i``:

- ``dataset.get(i, rng)``: the loader's way. Reads the raw sample, applies
  ``dataset.transform(image, rng)`` with the ``numpy.random.Generator`` it is
  handed, and returns ``(image, label)``: image a NumPy array in CHW layout
  (uint8 or float32), label an int. It returns ``None`` for a sample that
  cannot be read and is skipped (ImageFolder with ``on_error="skip"``).
- ``dataset[i]`` (``__getitem__(i, rng=None)``): the interactive way; the same
  as ``get`` with a fresh, unseeded generator when ``rng`` is None.

A transform is any callable ``transform(image, rng) -> image``. It draws all
its randomness from ``rng``, never from global state, so the loader, which
hands every sample its own generator derived from ``(seed, epoch)``, is
exactly reproducible.

Subclasses of :class:`Dataset` implement ``__len__`` and
``load(i) -> (image, label) | None`` (the untransformed sample) and set
``self.transform``; ``get`` and ``__getitem__`` come from the base class.
"""
import queue
import threading

import numpy as np


class DatasetError(ValueError):
    """A dataset whose files cannot be what they claim (garbage bytes, a bad label, one class, no readable
    image): the message names the file or directory and what is wrong. The command line prints it as
    one line."""


class Dataset:
    """Base class implementing ``get`` and ``__getitem__`` on top of ``load``.

    Subclasses set ``self.transform``, ``self.classes`` and ``self.num_classes``.
    """

    transform = None

    def __len__(self):
        raise NotImplementedError

    def load(self, i):
        """Untransformed sample ``i`` as ``(image CHW, label int)``, or None if skipped."""
        raise NotImplementedError

    def _check_index(self, i):
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        return i

    def get(self, i, rng):
        """Sample ``i`` with the transform applied using ``rng``; None if skipped."""
        sample = self.load(self._check_index(i))
        if sample is None:
            return None
        image, label = sample
        if self.transform is not None:
            image = self.transform(image, rng)
        return image, int(label)

    def __getitem__(self, i, rng=None):
        if rng is None:
            rng = np.random.default_rng()
        return self.get(i, rng)


def to_float_batch(images, indices):
    """Stack per-sample images into one float32 batch (B, *image_shape).

    The rule: uint8 images (values 0..255) become float32 in [0, 1] (divided
    by 255); floating images are cast to float32 unchanged. Any other dtype,
    or a shape that differs from the first sample's, is an error naming the
    dataset index.
    """
    first_shape = images[0].shape
    for image, index in zip(images, indices):
        if image.shape != first_shape:
            raise ValueError(f"sample {index} has shape {image.shape}, but sample {indices[0]} "
                             f"in the same batch has shape {first_shape}: all images in a batch "
                             f"must have the same shape (add a crop/resize transform)")
        if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
            raise TypeError(f"sample {index} has dtype {image.dtype}: expected uint8 or float")
    batch = np.stack(images)  # (B, C, H, W), or (B, 10, C, h, w) after TenCrop
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) / np.float32(255.0)
    return batch.astype(np.float32, copy=False)


class DataLoader:
    """Batches of a dataset, optionally shuffled, with background prefetch.

    ``DataLoader(dataset, batch_size, shuffle=False, seed=0, drop_last=False,
    prefetch=2)``. Iterating yields ``(images float32 (B, C, H, W), labels
    int64 (B,))`` NumPy arrays (see :func:`to_float_batch` for the dtype rule).
    ``len(loader)`` is the number of batches; the last partial batch is
    yielded unless ``drop_last``.

    Reproducibility: call ``loader.set_epoch(e)`` before iterating. The
    order (if ``shuffle``) and every random transform of epoch ``e`` come from
    ``np.random.default_rng([seed, e])``: the order is drawn first, then, batch
    by batch in order, one child generator per sample is spawned from it
    (``Generator.spawn``). So epoch ``e`` is identical whether or not earlier
    epochs ran in this process, and whatever the prefetch setting.
    ``set_epoch(e, start_batch=k)`` starts the next iteration at batch ``k`` of
    that order (resuming mid-epoch): batches 0..k-1 are not loaded (their
    generators are still spawned, which costs nothing), and the batches that
    follow are exactly those of a full pass.

    ``prefetch=k > 0``: a daemon worker thread fills a queue up to ``k``
    batches ahead. An exception in the worker is re-raised in the consumer
    (the same exception object, original message). Leaving the loop early
    (``break``, Ctrl-C, an exception) stops the worker. ``prefetch=0`` loads
    synchronously in the consumer's thread (simplest; good for debugging).

    Skipped samples (``dataset.get`` returned None) are left out of their
    batch; their indices for the current epoch are in ``loader.skipped``. A
    batch whose samples were all skipped is not yielded, so ``len(loader)``
    is then an upper bound.

    Data parallelism: ``num_shards=K, shard=r`` splits every batch of
    ``batch_size`` (the global batch) into K contiguous parts of (nearly)
    equal size (:func:`shard_bounds`) and yields part r. Every loader of the
    K still draws the whole epoch's order and spawns every sample's
    generator, so a sample is cropped and flipped the same whatever K is.
    A sharded loader yields every batch, an empty part as zero-length
    arrays, so that the K processes step together.
    ``return_indices=True`` yields ``(images, labels, indices)``: the dataset
    indices of the rows (int64 (B,)), which key the dropout masks
    (``minialex.keyed_random``).
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False, prefetch=2,
                 num_shards=1, shard=0, return_indices=False):
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if int(prefetch) < 0:
            raise ValueError(f"prefetch must be >= 0 (0 = synchronous), got {prefetch}")
        if int(num_shards) < 1 or not 0 <= int(shard) < int(num_shards):
            raise ValueError(f"shard must be in [0, num_shards), got shard {shard} of {num_shards}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.num_shards, self.shard = int(num_shards), int(shard)
        self.return_indices = bool(return_indices)
        self.epoch = 0
        self.start_batch = 0
        self.skipped = []

    def set_epoch(self, epoch, start_batch=0):
        """Choose the epoch whose order and random transforms the next iteration uses, and the batch
        of that order it starts at (0: the whole epoch)."""
        if int(start_batch) < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def _batches(self, epoch, start, skipped):
        """Generate the batches of ``epoch`` from batch ``start`` on (in the worker thread if prefetching).

        Indices of samples the dataset skipped are appended to ``skipped``.
        """
        epoch_rng = np.random.default_rng([self.seed, epoch])
        n = len(self.dataset)
        order = epoch_rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            sample_rngs = epoch_rng.spawn(len(indices))  # needs NumPy >= 1.25; spawned even when skipped,
            if b < start:                                # so later batches get the same generators
                continue
            if self.num_shards > 1:                      # this process's part of the global batch
                part = slice(*shard_bounds(len(indices), self.num_shards, self.shard))
                indices, sample_rngs = indices[part], sample_rngs[part]
            images, labels, kept = [], [], []
            for index, rng in zip(indices, sample_rngs):
                sample = self.dataset.get(int(index), rng)
                if sample is None:
                    skipped.append(int(index))
                    continue
                images.append(np.asarray(sample[0]))
                labels.append(sample[1])
                kept.append(int(index))
            if images:
                batch = to_float_batch(images, kept), np.asarray(labels, dtype=np.int64)
            elif self.num_shards > 1:                    # nothing here, but the other shards step
                batch = np.zeros((0,), np.float32), np.zeros((0,), np.int64)
            else:
                continue
            yield (*batch, np.asarray(kept, dtype=np.int64)) if self.return_indices else batch

    def __iter__(self):
        self.skipped = []
        batches = self._batches(self.epoch, self.start_batch, self.skipped)  # fixed now, not when first run
        if self.prefetch == 0:
            return batches
        return _Prefetcher(batches, self.prefetch)


def shard_bounds(n, num_shards, shard):
    """(start, stop) of part ``shard`` when ``n`` samples are split into ``num_shards`` contiguous parts
    whose sizes differ by at most one: [shard * n // K, (shard + 1) * n // K)."""
    return shard * n // num_shards, (shard + 1) * n // num_shards


def _put(q, stop, item):
    """Put ``item`` in queue ``q``; give up (return False) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _prefetch_worker(batches, q, stop):
    """Worker thread body: move batches from the generator into the queue.

    It holds no reference to the _Prefetcher, so a consumer that drops the
    iterator (``break``) lets it be garbage-collected, which sets ``stop``.
    """
    try:
        for batch in batches:
            if not _put(q, stop, ("batch", batch)):
                return
        _put(q, stop, ("done", None))
    except BaseException as exc:  # handed to the consumer, which re-raises it
        _put(q, stop, ("error", exc))
    finally:
        batches.close()


class _Prefetcher:
    """Iterator running a batch generator in a daemon thread, ``depth`` batches ahead."""

    def __init__(self, batches, depth):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=_prefetch_worker,
                                        args=(batches, self._queue, self._stop),
                                        daemon=True, name="minialex-prefetch")
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        try:
            kind, payload = self._wait()
        except BaseException:  # Ctrl-C while waiting: stop the worker, then propagate
            self.close()
            raise
        if kind == "batch":
            return payload
        self.close()
        if kind == "error":
            raise payload
        raise StopIteration

    def _wait(self):
        while True:
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the prefetch worker thread died without a result")

    def close(self):
        """Stop the worker thread and drop any batches it had prepared."""
        self._finished = True
        self._stop.set()
        while True:  # unblock a worker waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5.0)

    def __del__(self):  # dropped mid-epoch (``break``): let the worker exit
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
