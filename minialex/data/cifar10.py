"""CIFAR-10 read from a directory the user points at (no download).

Both official formats (https://www.cs.toronto.edu/~kriz/cifar.html) are
detected automatically, in ``root`` itself or in ``root/cifar-10-batches-bin``
/ ``root/cifar-10-batches-py``:

- binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin``,
  ``test_batch.bin``, ``batches.meta.txt``. Each record is 3073 bytes:
  1 label byte, then 3072 bytes = the R, G, B planes of a 32x32 image.
- Python version: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``: pickled dicts with bytes keys ``b"data"`` (uint8
  (10000, 3072), the same plane layout) and ``b"labels"`` (list of int);
  meta ``b"label_names"``. Read only through :mod:`.safe_pickle`.
"""
from pathlib import Path

import numpy as np

from .loader import Dataset, DatasetError
from .safe_pickle import load_cifar_pickle

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
RECORD_BYTES = 1 + 3 * 32 * 32  # label byte + R, G, B planes
TRAIN_BATCHES = [f"data_batch_{k}" for k in range(1, 6)]
TEST_BATCHES = ["test_batch"]
SUBDIRS = {"binary": "cifar-10-batches-bin", "python": "cifar-10-batches-py"}


def find_cifar10(root):
    """Return ``(directory, format)`` with format "binary" or "python".

    Looks in ``root`` and in its ``cifar-10-batches-bin`` /
    ``cifar-10-batches-py`` sub-directories for ``data_batch_1[.bin]`` or
    ``test_batch[.bin]``. Raises FileNotFoundError naming what was expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory {root} does not exist")
    for directory in (root, root / SUBDIRS["binary"], root / SUBDIRS["python"]):
        for fmt, suffix in (("binary", ".bin"), ("python", "")):
            names = ("data_batch_1" + suffix, "test_batch" + suffix)
            if any((directory / name).is_file() for name in names):
                return directory, fmt
    raise FileNotFoundError(
        f"no CIFAR-10 batches found in {root}: expected data_batch_1.bin .. data_batch_5.bin + "
        f"test_batch.bin (binary version) or data_batch_1 .. data_batch_5 + test_batch (Python "
        f"version), in {root} or in {root}/{SUBDIRS['binary']} or {root}/{SUBDIRS['python']}")


def read_binary_batch(path):
    """One binary batch file -> (images uint8 (n, 3, 32, 32), labels uint8 (n,))."""
    raw = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)  # (n * 3073,)
    if raw.size == 0 or raw.size % RECORD_BYTES != 0:
        raise DatasetError(f"{path}: size {raw.size} bytes is not a positive multiple of "
                         f"{RECORD_BYTES} (1 label byte + 3072 pixel bytes): truncated or not a "
                         f"CIFAR-10 binary batch")
    records = raw.reshape(-1, RECORD_BYTES)                 # (n, 3073)
    labels = records[:, 0]                                  # (n,)
    if labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DatasetError(f"{path}: record {bad} has label {labels[bad]}, but CIFAR-10 labels are 0..9: this is "
                           f"not a CIFAR-10 binary batch (or it is damaged)")
    images = records[:, 1:].reshape(-1, 3, 32, 32)          # (n, 3, 32, 32)
    return images, labels


def read_python_batch(path):
    """One pickled batch file -> (images uint8 (n, 3, 32, 32), labels uint8 (n,))."""
    batch = load_cifar_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DatasetError(f"{path}: expected a dict with keys b'data' and b'labels', got {keys}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{path}: b'data' must be a uint8 array (n, 3072), got {desc}")
    labels = batch[b"labels"]
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(data):
        raise DatasetError(f"{path}: b'labels' must be a list of {len(data)} ints")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DatasetError(f"{path}: b'labels' must be ints in 0..9")
    images = data.reshape(-1, 3, 32, 32)                    # (n, 3, 32, 32)
    return images, labels.astype(np.uint8)


def read_class_names(directory, fmt):
    """Class names from batches.meta[.txt]; the standard names if it is absent."""
    if fmt == "binary":
        path = directory / "batches.meta.txt"
        if not path.is_file():
            return list(CLASSES)
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        path = directory / "batches.meta"
        if not path.is_file():
            return list(CLASSES)
        meta = load_cifar_pickle(path)
        if not isinstance(meta, dict) or b"label_names" not in meta:
            raise DatasetError(f"{path}: expected a dict with key b'label_names'")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
    if len(names) != len(CLASSES):
        raise DatasetError(f"{path}: expected {len(CLASSES)} class names, got {len(names)}")
    return names


class CIFAR10(Dataset):
    """CIFAR-10 from a local directory; samples are ``(uint8 (3, 32, 32), int)``.

    ``CIFAR10(root, split="train"|"test", transform=None)``: "train" is the
    50,000 images of data_batch_1..5, "test" the 10,000 of test_batch. The
    format (binary or Python) is detected; ``self.format`` says which.
    """

    def __init__(self, root, split="train", transform=None):
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}: expected 'train' or 'test'")
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.directory, self.format = find_cifar10(root)
        suffix = ".bin" if self.format == "binary" else ""
        read = read_binary_batch if self.format == "binary" else read_python_batch
        images, labels = [], []
        for name in TRAIN_BATCHES if split == "train" else TEST_BATCHES:
            path = self.directory / (name + suffix)
            if not path.is_file():
                raise FileNotFoundError(f"missing CIFAR-10 batch {path} ({self.format} version, "
                                        f"split {split!r})")
            batch_images, batch_labels = read(path)
            images.append(batch_images)
            labels.append(batch_labels)
        self.images = np.concatenate(images)                     # (N, 3, 32, 32) uint8
        self.labels = np.concatenate(labels).astype(np.int64)    # (N,)
        self.classes = read_class_names(self.directory, self.format)
        self.num_classes = len(self.classes)

    def __len__(self):
        return len(self.labels)

    def load(self, i):
        return self.images[i], int(self.labels[i])
