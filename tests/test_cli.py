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
