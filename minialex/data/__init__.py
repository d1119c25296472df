"""minialex.data: datasets, transforms and a prefetching DataLoader (pure NumPy).

Datasets follow one protocol (see :mod:`minialex.data.loader`): ``len``,
``get(i, rng) -> (image CHW, label int) | None``, ``dataset[i]``, ``classes``,
``num_classes``. Transforms are callables ``transform(image, rng)``.
"""
from .cifar10 import CIFAR10
from .digits import Digits, convert_mnist_csv, load_digits
from .image_folder import BadImageError, ImageFolder
from .loader import DataLoader, Dataset, DatasetError
from .safe_pickle import CifarUnpickler, UnsafePickleError, load_cifar_pickle
from .transforms import (CenterCrop, Compose, FiveCrop, Normalize, PCAColorJitter, RandomCrop,
                         RandomHorizontalFlip, TenCrop, ToFloat, compute_rgb_pca)

__all__ = [
    "CIFAR10", "Digits", "convert_mnist_csv", "load_digits", "BadImageError", "ImageFolder",
    "DataLoader", "Dataset", "DatasetError", "CifarUnpickler", "UnsafePickleError", "load_cifar_pickle",
    "CenterCrop", "Compose", "FiveCrop", "Normalize", "PCAColorJitter", "RandomCrop",
    "RandomHorizontalFlip", "TenCrop", "ToFloat", "compute_rgb_pca",
]
