"""Checkpoints: one ``.npz`` file of plain arrays plus JSON metadata, written atomically.

Layout of the file (a zip of ``.npy`` arrays, as ``numpy.savez`` writes it):

    model/<parameter name>        the model's state_dict, e.g. model/features.0.weight
    optimizer/velocity/<i>        the SGD velocity of parameter i (numbered across the groups)
    __meta__                      uint8 bytes of a UTF-8 JSON document: format, version, everything else
                                  (model config, optimiser hyper-parameters, epoch, RNG state, ...)

Safety: the file is read with ``numpy.load(..., allow_pickle=False)`` and ``json.loads``: nothing in it
can run code, and an array of Python objects (which would need pickle) is refused. Before any array is
allocated, every entry's ``.npy`` header is read and checked: a numeric dtype, and a declared size that
the entry really holds (so a hand-made file that declares a 400 GB array is refused in one line instead
of exhausting memory); the entries together cannot expand to more than DEFLATE allows of the file's size.

Atomicity: :func:`save_checkpoint` writes a temporary file ``.<name>.<8 random characters>.tmp`` in the
same directory, flushes it to disk, then renames it over the old checkpoint with ``os.replace`` (atomic
on POSIX and Windows). A crash or Ctrl-C mid-write leaves the previous checkpoint untouched; a
``kill -9`` mid-write leaves the temporary file, which the next save (or ``--resume``) removes
(:func:`remove_stale_temp_files`). A full disk is reported as :class:`DiskFullError`, naming the file.
"""
import errno
import json
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "minialex-checkpoint"
VERSION = 1
META_KEY = "__meta__"
# DEFLATE's largest compression ratio (RFC 1951: a 258-byte match in ~2 bits): no honest zip entry
# expands by more.
DEFLATE_MAX_RATIO = 1032
NUMERIC_KINDS = "biuf"      # bool, int, unsigned, float: what state dicts and the metadata bytes use


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit: the message says which file and why."""


class DiskFullError(OSError):
    """The disk (or quota) filled up while a checkpoint was written; the previous checkpoint is kept.
    ``errno`` is ENOSPC or EDQUOT; the message (``strerror``) names the directory and the file."""

    def __str__(self):
        return self.strerror


def _temp_pattern(path):
    """The names ``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")`` gives beside ``path``."""
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}" + re.escape(".tmp"))


def remove_stale_temp_files(path):
    """Delete the temporary files an interrupted :func:`save_checkpoint` of ``path`` left behind
    (a ``kill -9`` or a second Ctrl-C mid-write); only names of exactly that form, beside ``path``.

    Returns the total bytes freed and the number of files removed. Called at the start of every save;
    a run writes its checkpoint from one process, so none of these is still being written.
    """
    path = Path(path)
    pattern = _temp_pattern(path)
    freed = count = 0
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                size = entry.stat(follow_symlinks=False).st_size
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            freed, count = freed + size, count + 1
    return freed, count


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
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)                            # mkstemp made it private (0600)
        os.replace(tmp, path)                           # the atomic step
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "the previous checkpoint is kept" if path.exists() else "no checkpoint was written"
            raise DiskFullError(exc.errno, f"the disk is full ({os.strerror(exc.errno)}) on {path.parent.resolve()}: "
                                           f"could not write the checkpoint {path}; {kept}") from None
        raise
    return path


def _check_entries(path):
    """Read every entry's .npy header (not its data) and refuse what cannot be a checkpoint's array.

    An entry must hold a numeric array whose declared size is what the entry really contains; the
    entries' compressed sizes must fit in the file, and an entry can expand by at most DEFLATE's ratio
    (a stored, uncompressed entry not at all). So nothing allocated exceeds what the file can hold.
    Raises CheckpointError.
    """
    on_disk = os.path.getsize(path)
    in_file = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else info.filename
            in_file += info.compress_size
            if in_file > on_disk:
                raise CheckpointError(f"checkpoint {path}: its entries declare {in_file:,} bytes or more, but "
                                      f"the file has {on_disk:,}")
            ratio = 1 if info.compress_type == zipfile.ZIP_STORED else DEFLATE_MAX_RATIO
            if info.file_size > ratio * info.compress_size:
                raise CheckpointError(f"checkpoint {path}: entry {name} declares {_bytes(info.file_size)}, more "
                                      f"than its {_bytes(info.compress_size)} in the file can hold")
            with archive.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f".npy format version {version[0]}.{version[1]} is not one minialex "
                                         f"writes")
                except ValueError as exc:
                    raise CheckpointError(f"checkpoint {path}: entry {name} is not a valid .npy array "
                                          f"({exc})") from None
                header = f.tell()
            if dtype.hasobject:
                raise CheckpointError(f"checkpoint {path} contains pickled Python objects ({name}), which "
                                      f"minialex refuses to load (they could run code)")
            if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
                raise CheckpointError(f"checkpoint {path}: entry {name} has dtype {dtype}; a checkpoint holds "
                                      f"only numeric arrays")
            declared = math.prod(shape) * dtype.itemsize
            if header + declared != info.file_size:
                raise CheckpointError(f"checkpoint {path}: entry {name} declares a {dtype} array of shape "
                                      f"{shape} ({_bytes(declared)}), but the entry holds "
                                      f"{_bytes(info.file_size - header)}")


def _bytes(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def load_checkpoint(path, meta_only=False):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns ``{"model": {name: ndarray}, "optimizer": {"param_groups", "velocity"} or None, "meta": dict}``;
    with ``meta_only``, ``{"meta": dict}`` alone, without reading (or CRC-checking) the arrays.
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
        _check_entries(path)
        with np.load(path, allow_pickle=False) as npz:
            names = [name for name in npz.files if name == META_KEY or not meta_only]
            arrays = {name: npz[name] for name in names}       # reads (and CRC-checks) these arrays now
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
    if meta_only:
        return {"meta": document["meta"], "path": str(path)}
    model = {k[len("model/"):]: a for k, a in arrays.items() if k.startswith("model/")}
    optimizer = None
    if "optimizer" in document:
        prefix = "optimizer/velocity/"
        velocity = {int(k[len(prefix):]): a for k, a in arrays.items() if k.startswith(prefix)}
        optimizer = {"param_groups": document["optimizer"]["param_groups"], "velocity": velocity}
    return {"model": model, "optimizer": optimizer, "meta": document["meta"], "path": str(path)}
