"""``python -m minialex``, run as a user runs it (subprocesses): help, one-line errors, a tiny training
run followed by eval and predict on its checkpoint, and the summary table."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None, **extra_env):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", **extra_env)          # steady when other work shares the cores
    return subprocess.run([sys.executable, "-m", "minialex", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_conv_algorithm_setting_is_a_one_line_error_for_every_command(tmp_path):
    for args in (("train", "--out", str(tmp_path / "run")), ("summary",), ("eval", "--checkpoint", str(tmp_path))):
        assert_one_line_error(run(*args, MINIALEX_CONV_ALGORITHM="fast"),
                              "MINIALEX_CONV_ALGORITHM='fast' is not one of auto, im2col, winograd")
    assert not (tmp_path / "run").exists()


def test_help_explains_every_flag():
    result = run("train", "--help")
    assert result.returncode == 0
    for flag in ("--model", "--dataset", "--data-path", "--device", "--batch-size", "--epochs", "--lr",
                 "--momentum", "--weight-decay", "--schedule", "--seed", "--log-interval", "--out", "--resume",
                 "--max-batches", "--threads"):
        assert flag in result.stdout, flag
    top = run("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("train", "eval", "predict", "summary"))


@pytest.mark.parametrize("args,needles", [
    (["train", "--lr", "abc"], ["--lr", "abc"]),
    (["train", "--model", "alexnet"], ["--model", "alexnet"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--dataset", "cifar10", "--data-path", "/no/such/dir"], ["/no/such/dir", "does not exist"]),
    (["train", "--model", "paper"], ["--model paper", "227"]),
    (["eval", "--checkpoint", "/no/such/checkpoint.npz"], ["does not exist"]),
    (["train", "--bogus"], ["--bogus"]),
])
def test_errors_are_one_line(args, needles):
    assert_one_line_error(run(*args), *needles)


def test_cuda_without_cupy_is_one_line(monkeypatch):
    """As a user without CuPy sees it: the test suite's CuPy stand-in is taken off the path."""
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and not p.endswith("fake_cupy")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    probe = subprocess.run([sys.executable, "-c", "import cupy"], capture_output=True, cwd=ROOT)
    if probe.returncode == 0:
        pytest.skip("CuPy is installed")
    assert_one_line_error(run("train", "--device", "cuda", "--max-batches", "1"), "CuPy")


def test_tiny_train_then_eval_and_predict(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--epochs", "1", "--max-batches", "3", "--batch-size", "16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout and "test top-1 error" in result.stdout and "top-5" in result.stdout
    assert {"checkpoint.npz", "metrics.jsonl", "conv1_filters.png"} <= set(os.listdir(out))

    again = run("train", "--epochs", "1", "--out", str(out))
    assert_one_line_error(again, "already holds a checkpoint", "--resume")
    other = run("train", "--resume", str(out), "--model", "paper")
    assert_one_line_error(other, "--model paper differs")

    evaluated = run("eval", "--checkpoint", str(out))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "1000 images" in evaluated.stdout and "top-1 error" in evaluated.stdout
    assert "final test (5 crops averaged" in result.stdout
    five = run("eval", "--checkpoint", str(out), "--five-crop", "--max-batches", "2")
    assert five.returncode == 0 and "200 images, 5-crop: top-1 error" in five.stdout, five.stderr
    assert_one_line_error(run("eval", "--checkpoint", str(out), "--five-crop", "--ten-crop"),
                          "--ten-crop: not allowed with argument --five-crop")

    from minialex.data import load_digits
    from minialex.train.plots import write_png
    images, _ = load_digits("test")
    write_png(tmp_path / "seven.png", images[700, 0])               # a 7 (classes are in order)
    predicted = run("predict", "--checkpoint", str(out), str(tmp_path / "seven.png"))
    assert predicted.returncode == 0, predicted.stderr
    line = predicted.stdout.strip()
    assert line.startswith(str(tmp_path / "seven.png")) and line.count("%") == 5
    missing = run("predict", "--checkpoint", str(out), str(tmp_path / "none.png"))
    assert_one_line_error(missing, "none.png")

    filters = run("visualize", "filters", "--checkpoint", str(out), "--out", str(tmp_path / "f.png"))
    assert filters.returncode == 0, filters.stderr
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    near = run("neighbors", "--checkpoint", str(out / "checkpoint.npz"), "--queries", "3", "--k", "4")
    assert near.returncode == 0, near.stderr
    assert "of the 12 neighbours share their query's label" in near.stdout
    assert (out / "neighbors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_one_line_error(run("visualize", "filters", "--checkpoint", str(tmp_path / "nope")), "nope")
    assert_one_line_error(run("neighbors", "--checkpoint", str(out), "--k", "5000"), "--k 5000")


def test_corrupt_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    assert_one_line_error(run("eval", "--checkpoint", str(bad)), "corrupt or truncated")


def test_summary_paper():
    result = run("summary", "--model", "paper")
    assert result.returncode == 0, result.stderr
    assert "60,965,224" in result.stdout and "724,406,816" in result.stdout
    assert "105,415,200" in result.stdout                            # conv1 MACs
    assert np.sum([line.startswith("features.") for line in result.stdout.splitlines()]) == 15


# ----------------------------------------------------------------------------- issue 15: one line, nothing silent
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = run("train", "--epochs", "1", "--max-batches", "3", "--batch-size", "16", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def stderr_lines(result):
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()


def test_predict_names_each_unreadable_image_and_predicts_the_others(tmp_path, tiny_run):
    Image = pytest.importorskip("PIL.Image")
    from minialex.data import load_digits
    images, _ = load_digits("test")
    Image.fromarray(images[700, 0]).save(tmp_path / "seven.png")
    bad = {"empty.png": b"", "text.png": b"hello", "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(200)}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder.png").mkdir()
    Image.new("L", (20000, 20000)).save(tmp_path / "bomb.png")          # 4e8 pixels: over Pillow's limit
    names = ["empty.png", "seven.png", "text.png", "corrupt.png", "folder.png", "bomb.png", "missing.png"]
    result = run("predict", "--checkpoint", str(tiny_run), *[str(tmp_path / n) for n in names])
    assert result.returncode == 1
    lines = stderr_lines(result)
    assert len(lines) == 7 and lines[-1] == "minialex: error: 6 of 7 images could not be read"
    for name, line in zip([n for n in names if n != "seven.png"], lines):
        assert line.startswith("minialex: error: ") and name in line, line
    assert "decompression bomb" in lines[4] and "does not exist" in lines[5]
    out = result.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(str(tmp_path / "seven.png")) and out[0].count("%") == 5


def test_predict_inverts_a_black_on_white_digit_and_says_so(tmp_path, tiny_run):
    Image = pytest.importorskip("PIL.Image")
    from minialex.data import load_digits
    images, _ = load_digits("test")
    Image.fromarray(images[700, 0]).save(tmp_path / "white-on-black.png")
    Image.fromarray(255 - images[700, 0]).save(tmp_path / "black-on-white.png")
    result = run("predict", "--checkpoint", str(tiny_run), str(tmp_path / "white-on-black.png"),
                 str(tmp_path / "black-on-white.png"))
    assert result.returncode == 0
    assert stderr_lines(result) == [f"minialex: warning: {tmp_path / 'black-on-white.png'} looks like a dark digit on "
                                    f"a light background; the digits net expects white on black (MNIST), so it was "
                                    f"inverted (--invert no keeps it as is)"]
    normal, inverted = [line.split(":  ")[1] for line in result.stdout.strip().splitlines()]
    assert normal == inverted
    kept = run("predict", "--checkpoint", str(tiny_run), "--invert", "no", str(tmp_path / "black-on-white.png"))
    assert kept.returncode == 0 and kept.stderr == "" and kept.stdout.split(":  ")[1].strip() != normal
    described = " ".join(run("predict", "--help").stdout.split())
    assert "white digit on a black background" in described and "--invert" in described


def test_garbage_cifar_files_and_an_out_that_is_a_file_are_one_line(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        (tmp_path / f"{name}.bin").write_bytes(rng.integers(0, 256, 3 * 3073, dtype=np.uint8).tobytes())
    assert_one_line_error(run("train", "--dataset", "cifar10", "--data-path", str(tmp_path)),
                          "data_batch_1.bin", "not a CIFAR-10 binary batch")
    (tmp_path / "a-file").write_text("")
    assert_one_line_error(run("train", "--out", str(tmp_path / "a-file")), "a-file is a file, not a directory")


def test_a_full_disk_during_a_checkpoint_write_is_one_line(tmp_path):
    code = ("import errno, os, sys\n"
            "from minialex.train import checkpoint\n"
            "def full(f, arrays):\n"
            "    f.write(b'PK')\n"
            "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
            "checkpoint._write_npz = full\n"
            "from minialex.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code, "train", "--epochs", "1", "--max-batches", "1",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1
    assert stderr_lines(result) == [f"minialex: error: the disk is full (No space left on device) on "
                                    f"{tmp_path / 'run'}: could not write the checkpoint "
                                    f"{tmp_path / 'run' / 'checkpoint.npz'}; no checkpoint was written"]
    assert os.listdir(tmp_path / "run") == ["config.json"]


def test_a_huge_lr_prints_only_the_nan_message(tmp_path):
    result = run("train", "--lr", "1e9", "--max-batches", "3", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert len(stderr_lines(result)) == 1 and "the loss became nan" in result.stderr


def test_a_divergence_in_the_test_loss_stops_and_a_resume_with_a_lower_lr_continues(tmp_path):
    # lr 0.17, measured with the trainer's per-sample dropout masks (keyed_random), with 1 and 2 threads: the
    # test loss becomes NaN after epoch 3 while the training loss is finite; a resume at 0.002 then finishes
    out = tmp_path / "run"
    result = run("train", "--lr", "0.17", "--schedule", "none", "--max-batches", "3", "--epochs", "8",
                 "--out", str(out))
    assert result.returncode == 1
    line, = stderr_lines(result)
    assert "the test loss became" in line and "(its training loss was finite): training stopped" in line
    assert f"--resume {out} --lr 0.017" in line
    resumed = run("train", "--resume", str(out), "--lr", "0.002", "--epochs", "4")
    assert resumed.returncode == 0, resumed.stderr
    assert "--lr 0.002 (was 0.17) from epoch" in resumed.stdout and "no longer bit-exact" in resumed.stdout
    complete = run("train", "--resume", str(out))
    assert complete.returncode == 0 and complete.stderr == ""
    assert "is already complete: 4 of 4 epochs trained" in complete.stdout and "--epochs N (N > 4)" in complete.stdout
    assert "resuming at" not in complete.stdout


def test_a_checkpoint_with_forged_sizes_is_one_line(tmp_path, tiny_run):
    from minialex.train import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(tiny_run)
    ckpt["meta"]["model"]["num_classes"] = 10 ** 9
    save_checkpoint(tmp_path / "checkpoint.npz", ckpt["model"], ckpt["optimizer"], ckpt["meta"])
    assert_one_line_error(run("eval", "--checkpoint", str(tmp_path)), "model.num_classes is 1000000000")
