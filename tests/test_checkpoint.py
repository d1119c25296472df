"""Checkpoints: round trip, atomic writes, clear errors on corrupt files, no pickles."""
import errno
import io
import os
import zipfile

import numpy as np
import pytest

import minialex
from minialex import backend
from minialex.models import alexnet
from minialex.optim import SGD
from minialex.train import checkpoint as ckpt_module
from minialex.train.checkpoint import (CheckpointError, DiskFullError, load_checkpoint, remove_stale_temp_files,
                                      save_checkpoint)


@pytest.fixture
def trained():
    """A tiny model and an optimiser that has taken one step (so it has velocities)."""
    minialex.manual_seed(0)
    model = alexnet("mini", 10, in_channels=1, input_size=28, widths=(4, 4, 4, 4, 4), hidden=8)
    opt = SGD(model.parameters(), 0.01)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    return model, opt


def test_round_trip(tmp_path, trained):
    model, opt = trained
    meta = {"epoch": 3, "rng": backend.get_rng_state(), "note": "héllo"}
    path = save_checkpoint(tmp_path / "c.npz", model.state_dict(), opt.state_dict(), meta)
    loaded = load_checkpoint(path)
    assert loaded["meta"] == meta                          # 128-bit RNG integers survive JSON
    assert list(loaded["model"]) == list(model.state_dict())
    for name, a in model.state_dict().items():
        np.testing.assert_array_equal(loaded["model"][name], a)
        assert loaded["model"][name].dtype == a.dtype
    state = opt.state_dict()
    assert loaded["optimizer"]["param_groups"] == state["param_groups"]
    for i, v in state["velocity"].items():
        np.testing.assert_array_equal(loaded["optimizer"]["velocity"][i], v)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", model.state_dict())    # a run directory works too
    assert load_checkpoint(tmp_path / "run")["optimizer"] is None


def test_the_metadata_alone_reads_what_the_whole_checkpoint_holds(tmp_path, trained):
    model, opt = trained
    meta = {"epoch": 3, "ranks": 2}
    path = save_checkpoint(tmp_path / "c.npz", model.state_dict(), opt.state_dict(), meta)
    assert load_checkpoint(path, meta_only=True) == {"meta": meta, "path": str(path)}
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    for bad, message in ((tmp_path / "nope.npz", "does not exist"), (tmp_path / "plain.npz", "not a minialex")):
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(bad, meta_only=True)


def test_interrupted_write_keeps_the_old_checkpoint(tmp_path, trained, monkeypatch):
    model, opt = trained
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model.state_dict(), opt.state_dict(), {"epoch": 1})
    old_bytes = path.read_bytes()

    def crash_midway(f, arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt                            # e.g. Ctrl-C, or a full disk (OSError)
    monkeypatch.setattr(ckpt_module, "_write_npz", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model.state_dict(), opt.state_dict(), {"epoch": 2})
    assert path.read_bytes() == old_bytes
    assert load_checkpoint(path)["meta"] == {"epoch": 1}
    assert os.listdir(tmp_path) == ["checkpoint.npz"]      # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_gives_a_clear_error(tmp_path, trained, damage):
    model, opt = trained
    path = save_checkpoint(tmp_path / "c.npz", model.state_dict(), opt.state_dict(), {"epoch": 1})
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:len(data) // 2], "garbage": b"not a checkpoint" * 10, "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_flipped_byte_is_detected(tmp_path, trained):
    model, opt = trained
    path = save_checkpoint(tmp_path / "c.npz", model.state_dict(), None, {})
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF                           # inside some array: the zip CRC catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minialex checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")


class RunsCode:
    """Unpickling this calls os.system: a checkpoint must never do that."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_objects_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    meta = np.frombuffer(b'{"format": "minialex-checkpoint", "version": 1, "meta": {}}', dtype=np.uint8)
    evil = np.empty(1, dtype=object)
    evil[0] = RunsCode(marker)
    np.savez(tmp_path / "evil.npz", __meta__=meta, **{"model/w": evil})     # np.savez pickles object arrays
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(tmp_path / "evil.npz")
    assert not marker.exists()


def test_object_arrays_are_not_saved(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(tmp_path / "c.npz", {"w": np.array([None, 1], dtype=object)})
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- hostile files, full disks
def npy_bytes(shape, dtype, data=b""):
    """A .npy entry whose header declares ``shape``/``dtype`` but holds only ``data``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    meta = b'{"format": "minialex-checkpoint", "version": 1, "meta": {}}'
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("__meta__.npy", npy_bytes((len(meta),), np.uint8, meta))
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_entry_that_declares_a_huge_array_is_refused_before_allocating(tmp_path, compression):
    path = tmp_path / "huge.npz"
    write_zip(path, {"model/w.npy": npy_bytes((100_000, 1_000_000), np.float32, bytes(64))}, compression)
    with pytest.raises(CheckpointError, match=r"model/w declares a float32 array of shape \(100000, 1000000\) "
                                              r"\(400\.0 GB\), but the entry holds 64 bytes"):
        load_checkpoint(path)


def test_an_entry_whose_zip_sizes_lie_is_refused(tmp_path):
    path = tmp_path / "lies.npz"
    write_zip(path, {"model/w.npy": npy_bytes((4,), np.float32, bytes(16))})
    data = bytearray(path.read_bytes())
    # The central directory's uncompressed size of the second entry (stored): claim 400 GB there
    # and in the local header, as a hand-made file could.
    import struct
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, central + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"lies.npz: entry model/w declares 4.3 GB, more than its 144 bytes"):
        load_checkpoint(path)


def test_non_numeric_entries_are_refused(tmp_path):
    path = tmp_path / "strings.npz"
    write_zip(path, {"model/w.npy": npy_bytes((2,), "<U3", bytes(24))})
    with pytest.raises(CheckpointError, match=r"model/w has dtype <U3; a checkpoint holds only numeric arrays"):
        load_checkpoint(path)


def test_a_full_disk_is_one_clear_error_and_keeps_the_old_checkpoint(tmp_path, trained, monkeypatch):
    model, opt = trained
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model.state_dict(), opt.state_dict(), {"epoch": 1})
    old_bytes = path.read_bytes()

    def disk_full(f, arrays):
        f.write(b"PK\x03\x04 the first few blocks")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(ckpt_module, "_write_npz", disk_full)
    with pytest.raises(DiskFullError, match=rf"the disk is full .* on {tmp_path}: could not write the checkpoint "
                                            rf"{path}; the previous checkpoint is kept") as info:
        save_checkpoint(path, model.state_dict(), opt.state_dict(), {"epoch": 2})
    assert info.value.errno == errno.ENOSPC and "\n" not in str(info.value)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_stale_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path, trained):
    model, opt = trained
    path = save_checkpoint(tmp_path / "checkpoint.npz", model.state_dict(), opt.state_dict(), {"epoch": 1})
    stale = [tmp_path / ".checkpoint.npz.a1b2c3d_.tmp", tmp_path / ".checkpoint.npz.zzzzzzzz.tmp"]
    stale[0].write_bytes(path.read_bytes()[:1000])                   # a kill -9 mid-write
    stale[1].write_bytes(b"")                                        # a double Ctrl-C
    others = [tmp_path / ".checkpoint.npz.toolong99.tmp", tmp_path / "notes.tmp",
              tmp_path / ".other.npz.abcdefgh.tmp"]                  # not our temp names: left alone
    for p in others:
        p.write_text("keep me")
    assert remove_stale_temp_files(path) == (1000, 2)
    stale[0].write_bytes(b"x" * 10)
    save_checkpoint(path, model.state_dict(), opt.state_dict(), {"epoch": 2})
    assert sorted(os.listdir(tmp_path)) == sorted(["checkpoint.npz"] + [p.name for p in others])
