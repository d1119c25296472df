"""A restricted unpickler for the CIFAR-10 "python version" batches.

Unpickling runs whatever callables the file names, so a plain
``pickle.load`` on a downloaded file can execute arbitrary code. The CIFAR-10
batches contain only dicts, lists, bytes, ints and NumPy arrays, so
:class:`CifarUnpickler` resolves exactly the globals that NumPy's array
reconstruction needs and refuses everything else before it is called.
"""
import pickle

import numpy as np

from .loader import DatasetError

try:  # NumPy >= 2: the real home of _reconstruct, without numpy.core's deprecation warning
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct

# (module, name) -> object: the only globals a CIFAR-10 pickle may name.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # arrays pickled by NumPy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # arrays pickled by NumPy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle named a global outside :data:`ALLOWED_GLOBALS` (catch as either base)."""


class CifarUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves :data:`ALLOWED_GLOBALS`.

    ``path`` is used only in error messages. ``encoding="bytes"`` is what the
    official (Python 2 pickled) files need: their str keys come back as bytes.
    """

    def __init__(self, file, path="<file>"):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from {self.path}: CIFAR-10 pickles contain "
                f"only arrays, lists and dicts") from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {pid!r} in {self.path}: CIFAR-10 "
                                f"pickles contain only arrays, lists and dicts")


def load_cifar_pickle(path):
    """Unpickle the file at ``path`` with :class:`CifarUnpickler`.

    Raises UnsafePickleError for a global outside the allowed ones, DatasetError (naming the file)
    for bytes that are not a pickle at all (random bytes raise any of a dozen exception types)."""
    with open(path, "rb") as f:
        try:
            return CifarUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except Exception as exc:        # UnpicklingError, EOFError, ValueError, KeyError, TypeError, ...
            raise DatasetError(f"{path} is not a CIFAR-10 Python batch: it cannot be unpickled "
                               f"({type(exc).__name__}: {exc})") from None
