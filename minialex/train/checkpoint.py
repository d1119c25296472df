"""Checkpoints: one ``.npz`` file of plain arrays plus JSON metadata, written atomically.

Layout of the file (a zip of ``.npy`` arrays, as ``numpy.savez`` writes it):

    model/<parameter name>        the model's state_dict, e.g. model/features.0.weight
    optimizer/velocity/<i>        the SGD velocity of parameter i (numbered across the groups)
    __meta__                      uint8 bytes of a UTF-8 JSON document: format, version, everything else
                                  (model config, optimiser hyper-parameters, epoch, RNG state, ...)

Safety: the file is read with ``numpy.load(..., allow_pickle=False)`` and ``json.loads``: nothing in it
can run code, and an array of Python objects (which would need pickle) is refused.

Atomicity: :func:`save_checkpoint` writes a temporary file in the same directory, flushes it to disk,
then renames it over the old checkpoint with ``os.replace`` (atomic on POSIX and Windows). A crash or
Ctrl-C mid-write leaves the previous checkpoint untouched.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "minialex-checkpoint"
VERSION = 1
META_KEY = "__meta__"


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit: the message says which file and why."""


def _write_npz(f, arrays):
    """Write ``arrays`` (name -> ndarray) to the open binary file ``f`` as an uncompressed npz."""
    np.savez(f, **arrays)


def save_checkpoint(path, model_state, optimizer_state=None, meta=None):
    """Write a checkpoint atomically to ``path`` (a ``.npz`` file); returns the Path.

    Args:
        model_state: name -> ndarray (``model.state_dict()``).
        optimizer_state: ``SGD.state_dict()`` or None: its "velocity" arrays go into the npz, its
            "param_groups" into the metadata.
        meta: a JSON-able dict stored as is (epoch, RNG state, configs, ...).
    """
    path = Path(path)
    arrays = {f"model/{name}": np.asarray(a) for name, a in model_state.items()}
    document = {"format": FORMAT, "version": VERSION, "meta": meta or {}}
    if optimizer_state is not None:
        document["optimizer"] = {"param_groups": optimizer_state["param_groups"]}
        for i, v in optimizer_state["velocity"].items():
            arrays[f"optimizer/velocity/{int(i)}"] = np.asarray(v)
    for name, a in arrays.items():
        if a.dtype == object:
            raise TypeError(f"save_checkpoint: {name} is an object array; only numeric arrays can be saved")
    text = json.dumps(document, allow_nan=False)       # fails now, not at load time, if meta is not JSON
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)                            # mkstemp made it private (0600)
        os.replace(tmp, path)                           # the atomic step
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns ``{"model": {name: ndarray}, "optimizer": {"param_groups", "velocity"} or None, "meta": dict}``.
    Raises :class:`CheckpointError` (naming the file) when it is missing, truncated, corrupt, holds
    pickled objects, or is not a minialex checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":                       # every .npz is a zip file
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (it is not a .npz/zip file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}   # reads (and CRC-checks) every array now
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise CheckpointError(f"checkpoint {path} contains pickled Python objects, which minialex refuses "
                                  f"to load (they could run code)") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is not a minialex checkpoint (no {META_KEY} entry)")
    try:
        document = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path}: its metadata is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minialex checkpoint")
    if document.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {document.get('version')}; this minialex "
                              f"reads version {VERSION}")
    model = {k[len("model/"):]: a for k, a in arrays.items() if k.startswith("model/")}
    optimizer = None
    if "optimizer" in document:
        prefix = "optimizer/velocity/"
        velocity = {int(k[len(prefix):]): a for k, a in arrays.items() if k.startswith(prefix)}
        optimizer = {"param_groups": document["optimizer"]["param_groups"], "velocity": velocity}
    return {"model": model, "optimizer": optimizer, "meta": document["meta"], "path": str(path)}
