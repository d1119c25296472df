"""From a TrainConfig to datasets with the right transforms, and the "preprocess" record a checkpoint keeps.

Per dataset (the ``spec`` dict; ``eval`` and ``predict`` rebuild the same views from it):

    digits       1x28x28, train: random 28 crop of the image padded by 2;  test: the image
    cifar10      3x32x32, train: random 32 crop of the image padded by 4 + flip;  test: the image
    imagefolder  shorter side resized to 256 (36 for the 32x32 "mini" net), train: random crop + flip
                 (+ the paper's PCA colour noise with --color-pca); test: centre crop.
                 The crop is the model's input: 227 (paper, caffe), 224 (torchvision), 32 (mini).

then ``ToFloat`` (x / 255) and per-channel ``Normalize(mean, std)``. The paper's multi-view test (Sec. 4.1)
takes the 4 corners + centre of the padded (digits, cifar10) or resized image ("five-crop"), and their
mirrors ("ten-crop"); the digits are trained without flips, so their multi-view test is the five crops.
"""
import warnings
from pathlib import Path

import numpy as np

from ..data import (CIFAR10, CenterCrop, Compose, DatasetError, Digits, FiveCrop, ImageFolder, Normalize,
                    PCAColorJitter, RandomCrop, RandomHorizontalFlip, TenCrop, ToFloat, compute_rgb_pca)
from ..data.image_folder import BadImageError
from ..models import INPUT_SIZE
from .config import ConfigError

MEAN_STD = {
    "digits": ([0.1307], [0.3081]),                                   # MNIST
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),  # CIFAR-10 training set
    "imagefolder": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),    # ImageNet, as torchvision
}
TEST_VIEWS = {"single": None, "five-crop": FiveCrop, "ten-crop": TenCrop}   # views of a test image
PCA_SAMPLE = 256   # images used to estimate the RGB covariance for --color-pca on an ImageFolder


class Pad:
    """Zero-pad the borders of a (C, H, W) image by ``padding`` pixels (before TenCrop)."""

    def __init__(self, padding):
        self.padding = int(padding)

    def __call__(self, img, rng=None):
        p = self.padding
        return np.pad(img, ((0, 0), (p, p), (p, p)))   # (C, H + 2p, W + 2p)


def make_spec(dataset, model):
    """The input pipeline of ``dataset`` for ``model`` as a JSON-able dict; ConfigError if they don't fit."""
    mean, std = MEAN_STD[dataset]
    if dataset in ("digits", "cifar10"):
        channels, size = (1, 28) if dataset == "digits" else (3, 32)
        if model != "mini":
            raise ConfigError(f"--model {model} takes 3x{INPUT_SIZE[model]}x{INPUT_SIZE[model]} images but "
                              f"{dataset} images are {channels}x{size}x{size}: use --model mini "
                              f"(or --dataset imagefolder for the full-size nets)")
        return {"dataset": dataset, "channels": channels, "size": size, "pad": 2 if dataset == "digits" else 4,
                "resize": None, "flip": dataset == "cifar10", "mean": mean, "std": std}
    size = INPUT_SIZE[model]
    resize = 256 if size > 64 else size + size // 8
    return {"dataset": dataset, "channels": 3, "size": size, "pad": 0, "resize": resize, "flip": True,
            "mean": mean, "std": std}


def imagefolder_dirs(root):
    """(train_dir, test_dir) of an ImageNet-style tree: root/train and root/val (or root/test)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-path {root} does not exist or is not a directory")
    train = root / "train"
    test = next((root / name for name in ("val", "test") if (root / name).is_dir()), None)
    if not train.is_dir() or test is None:
        raise FileNotFoundError(f"--data-path {root}: expected sub-directories train/ and val/ (or test/), each "
                                f"with one directory per class")
    return train, test


def _open(spec, data_path, split, transform):
    dataset = spec["dataset"]
    if dataset == "digits":
        return Digits(split, transform)
    if dataset == "cifar10":
        return CIFAR10(data_path, split, transform)
    train_dir, test_dir = imagefolder_dirs(data_path)
    return ImageFolder(train_dir if split == "train" else test_dir, transform, resize=spec["resize"])


def train_transform(spec, augment=True, pca=None):
    steps = []
    if augment:
        steps.append(RandomCrop(spec["size"], padding=spec["pad"]))
        if spec["flip"]:
            steps.append(RandomHorizontalFlip())
    elif spec["resize"]:
        steps.append(CenterCrop(spec["size"]))
    steps.append(ToFloat())
    if pca is not None:
        steps.append(PCAColorJitter(*pca))
    steps.append(Normalize(spec["mean"], spec["std"]))
    return Compose(steps)


def test_transform(spec, views="single"):
    """The test images of ``spec`` as one view (C, size, size), or as the paper's views (V, C, size, size)
    of the padded (digits, cifar10) or resized image: "five-crop" (4 corners + centre) or "ten-crop"
    (and their mirrors), whose softmax outputs are averaged (``TEST_VIEWS``)."""
    if views not in TEST_VIEWS:
        raise ValueError(f"test views must be one of {', '.join(TEST_VIEWS)}, got {views!r}")
    steps = []
    if views != "single":
        steps += [Pad(spec["pad"])] if spec["pad"] else []
        steps.append(TEST_VIEWS[views](spec["size"]))   # (V, C, size, size)
        steps.append(_PerCrop(Compose([ToFloat(), Normalize(spec["mean"], spec["std"])])))
        return Compose(steps)
    if spec["resize"]:
        steps.append(CenterCrop(spec["size"]))
    return Compose(steps + [ToFloat(), Normalize(spec["mean"], spec["std"])])


class _PerCrop:
    """Apply a (C, H, W) transform to each view of a (V, C, H, W) stack."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, views, rng=None):
        return np.stack([self.transform(v, rng) for v in views])


def rgb_pca(spec, data_path, seed):
    """Eigenvalues/vectors of the training set's RGB covariance (all of CIFAR-10, a sample of an ImageFolder)."""
    if spec["channels"] != 3:
        raise ConfigError(f"--color-pca needs colour (RGB) images; {spec['dataset']} is greyscale")
    raw = _open(spec, data_path, "train", None)
    if spec["dataset"] == "cifar10":
        return compute_rgb_pca(raw.images)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(raw), size=min(PCA_SAMPLE, len(raw)), replace=False)
    images = (raw.load(int(i)) for i in picks)
    return compute_rgb_pca(sample[0] for sample in images if sample is not None)


def build_datasets(config):
    """(train dataset, test dataset, spec) for a validated TrainConfig."""
    spec = make_spec(config.dataset, config.model)
    pca = rgb_pca(spec, config.data_path, config.seed) if config.color_pca else None
    train = _open(spec, config.data_path, "train", train_transform(spec, config.augment, pca))
    test = _open(spec, config.data_path, "test", test_transform(spec))
    if train.classes != test.classes:
        only_train = [c for c in train.classes if c not in test.classes]
        only_test = [c for c in test.classes if c not in train.classes]
        raise ConfigError(f"the train and test splits of {config.data_path} have different classes: only in "
                          f"train: {_names(only_train)}; only in test: {_names(only_test)}")
    if len(train.classes) < 2:
        raise DatasetError(f"the training split of {config.data_path} has a single class ({train.classes[0]!r}): "
                           f"a classifier needs at least two (one sub-directory per class)")
    for dataset in (train, test):
        if isinstance(dataset, ImageFolder):
            dataset.check_readable()          # before training, not an epoch of skipped batches
    return train, test, spec


def _names(classes, limit=10):
    shown = ", ".join(repr(c) for c in classes[:limit])
    return f"{shown}, ... ({len(classes)} in all)" if len(classes) > limit else shown or "none"


def open_test_set(spec, data_path=None, views="single"):
    """The test split described by a checkpoint's ``spec`` (for ``eval`` and the final test), in ``views``."""
    return _open(spec, data_path, "test", test_transform(spec, views))


def read_image(path, spec):
    """One image file -> uint8 (C, H, W), greyscale for digits, RGB otherwise, its shorter side resized to
    the test view's (for ``predict``).

    Raises FileNotFoundError, or BadImageError naming the file for anything Pillow cannot decode (a
    directory, text, a truncated file, an image over Pillow's decompression-bomb limit).
    """
    from ..data.image_folder import _import_pillow, resized_shape
    Image = _import_pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)    # refuse, don't just warn
            with Image.open(path) as img:
                img = img.convert("L" if spec["channels"] == 1 else "RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist") from None
    except Exception as exc:            # Pillow raises OSError, ValueError, SyntaxError, DecompressionBombError...
        reason = str(exc) or type(exc).__name__
        raise BadImageError(f"cannot read image {path}: {reason}") from None
    shorter = spec["resize"] or spec["size"]
    h, w = resized_shape(img.height, img.width, shorter)
    if (h, w) != (img.height, img.width):
        img = img.resize((w, h), getattr(Image, "Resampling", Image).BILINEAR)
    pixels = np.asarray(img, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)    # (C, H, W)


def bright_background(pixels):
    """Whether a uint8 (C, H, W) image's border (its outermost rows and columns) is mostly bright:
    a digit drawn dark on white paper. MNIST's digits, and so the digits net's input, are white on black."""
    ring = np.concatenate([pixels[:, 0, :], pixels[:, -1, :], pixels[:, :, 0], pixels[:, :, -1]], axis=1)
    return float(ring.mean()) > 127.5


def image_view(pixels, spec):
    """uint8 (C, H, W) -> float32 (C, size, size): the test view of ``spec`` (centre crop, normalised)."""
    view = Compose([CenterCrop(spec["size"]), ToFloat(), Normalize(spec["mean"], spec["std"])])
    return view(pixels, None)


def load_image(path, spec):
    """One image file -> float32 (C, size, size) as the test view of ``spec``, as it is (no inversion)."""
    return image_view(read_image(path, spec), spec)
