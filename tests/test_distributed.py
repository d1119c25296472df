"""Data-parallel training: shards, keyed randomness, and `mpiexec -n 2 python -m minialex train`.

The MPI tests launch mpiexec in a new process group under a timeout: a hang fails the test (and the
whole group is killed) instead of blocking the suite. They need mpi4py and an mpiexec
(``pip install '.[mpi]'``, part of the test extra) and are skipped, saying why, without them.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import minialex
from minialex import Tensor, backend, keyed_random
from minialex import functional as F
from minialex.data import DataLoader, Digits
from minialex.data.loader import shard_bounds
from minialex.distributed import launch
from minialex.distributed.communicator import LAUNCHER_RANK_VARIABLES, wait_until_read
from minialex.train.checkpoint import load_checkpoint
from minialex.train.data import make_spec, train_transform

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_worker.py"
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
try:
    import mpi4py  # noqa: F401
    _NO_MPI = None if MPIEXEC else "no mpiexec on PATH (pip install '.[mpi]')"
except ImportError:
    _NO_MPI = "mpi4py is not installed (pip install '.[mpi]')"
needs_mpi = pytest.mark.skipif(_NO_MPI is not None, reason=_NO_MPI or "")

# A short run that keeps dropout (0.3 on the mini net) and augmentation (random crops) on. im2col: the
# Winograd path's float32 rounding grows faster over steps (see the README's data-parallel section).
QUICK = ["--epochs", "1", "--max-batches", "6", "--batch-size", "16", "--conv-algorithm", "im2col",
         "--schedule", "step", "--no-progress", "--prefetch", "0"]    # step: runs are extended with --epochs
TOLERANCE = 1e-6        # max |w_1 - w_2| over all weights, 6 steps from one state; measured: 3e-8-6e-8


def child_env(default_ranks="1"):
    """The environment of a child: no launcher variables of ours, MINIALEX_NUM_THREADS unset, and
    MINIALEX_RANKS = ``default_ranks`` (None: unset, so --ranks auto)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_")) and k not in ("MINIALEX_RANKS", "MINIALEX_NUM_THREADS")}
    if default_ranks is not None:
        env["MINIALEX_RANKS"] = default_ranks
    return env


def run(args, ranks=None, timeout=180, default_ranks="1"):
    """`python -m minialex ...` (ranks None) or `mpiexec -n ranks python ...`; (returncode, stdout, stderr).
    ``default_ranks``: MINIALEX_RANKS, the default of --ranks (None: unset, so --ranks auto).
    On timeout the whole process group is killed and the test fails."""
    cmd = [sys.executable, *args] if args[0].endswith(".py") else [sys.executable, "-m", "minialex", *args]
    if ranks is not None:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(default_ranks), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung for {timeout} s")
    return proc.returncode, out, err


def weights(run_dir):
    return load_checkpoint(run_dir)["model"]


def max_difference(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


# ---------------------------------------------------------------------------------------- no MPI needed
def test_shard_bounds_split_evenly_and_cover_the_batch():
    for n in (0, 1, 7, 16, 33):
        for k in (1, 2, 3, 5):
            parts = [shard_bounds(n, k, r) for r in range(k)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            sizes = [stop - start for start, stop in parts]
            assert max(sizes) - min(sizes) <= 1


def test_shards_see_the_samples_and_augmentation_of_the_whole_batch():
    """K sharded loaders together yield the unsharded loader's batches: the same samples, cropped the same."""
    data = Digits("train", train_transform(make_spec("digits", "mini")))
    whole = DataLoader(data, 10, shuffle=True, seed=3, prefetch=0, return_indices=True)
    shards = [DataLoader(data, 10, shuffle=True, seed=3, prefetch=0, num_shards=3, shard=r, return_indices=True)
              for r in range(3)]
    for loader in [whole, *shards]:
        loader.set_epoch(2, start_batch=5)
    for b, (x, y, idx), *parts in zip(range(3), whole, *shards):
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
        np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), idx)
        assert [len(p[1]) for p in parts] == [3, 3, 4]


def test_a_sharded_loader_yields_an_empty_part_so_the_ranks_step_together():
    data = Digits("test")
    loader = DataLoader(data, 3, prefetch=0, num_shards=4, shard=0)     # 1 of 3 samples per batch... or none
    batches = list(loader)
    assert len(batches) == len(loader) and all(len(y) == 0 for _, y in batches)


def test_keyed_dropout_mask_belongs_to_the_sample_not_to_the_batch():
    x = Tensor(np.ones((6, 50), np.float32))
    with keyed_random.samples(np.arange(100, 106), seed=1, epoch=2):
        whole = F.dropout(x, 0.5).numpy()
    with keyed_random.samples([103, 104, 105], seed=1, epoch=2):
        tail = F.dropout(Tensor(np.ones((3, 50), np.float32)), 0.5).numpy()
    np.testing.assert_array_equal(whole[3:], tail)
    with keyed_random.samples(np.arange(100, 106), seed=1, epoch=3):          # another epoch: other masks
        other = F.dropout(x, 0.5).numpy()
    assert (other != whole).any()
    with keyed_random.samples(np.arange(100, 106), seed=1, epoch=2):           # two layers: two draws
        first, second = F.dropout(x, 0.5).numpy(), F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(first, whole)
    assert (second != first).any()


def _splitmix64(state):
    """SplitMix64 in plain Python integers (Steele, Lea and Flood 2014): the numbers after ``state``."""
    while True:
        state = (state + 0x9E3779B97F4A7C15) % 2**64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        yield z ^ (z >> 31)


def test_the_plain_splitmix64_gives_the_published_numbers():
    numbers = _splitmix64(1234567)                 # the sequence Rosetta Code's "Splitmix64" task lists
    assert [next(numbers) for _ in range(3)] == [6457827717110365317, 3203168211198807973, 9817491932198370423]
    assert next(_splitmix64(0)) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("dtype, bits", [(np.float32, 24), (np.float64, 53)])
def test_keyed_numbers_are_splitmix64_seeded_by_the_sample_key(dtype, bits):
    indices, seed, epoch = [0, 5, 2**40, 5], -3, 7

    def mix(z):                                    # one SplitMix64 output from state z
        return next(_splitmix64(z))

    keys = keyed_random.SampleKeys(indices, seed=seed, epoch=epoch)
    first = keys.uniform((4, 2, 3), dtype=dtype)
    second = keys.uniform((4, 5), dtype=dtype)
    assert first.dtype == dtype and first.shape == (4, 2, 3)
    for draw, out in enumerate((first, second)):
        for row, index in enumerate(indices):
            key = keyed_random.STREAM
            for word in (seed, epoch, index, draw):
                key = mix(key) ^ (word % 2**64)
            numbers = _splitmix64(mix(key))
            expected = [(next(numbers) >> (64 - bits)) / 2**bits for _ in range(out[row].size)]
            assert out[row].reshape(-1).tolist() == expected, (draw, row)
    np.testing.assert_array_equal(first[1], first[3])              # the same sample: the same numbers


def test_keyed_numbers_look_uniform_and_independent_across_samples():
    with keyed_random.samples(np.arange(64), seed=0, epoch=0) as keys:
        u = keys.uniform((64, 4096)).astype(np.float64)              # 262,144 numbers
    assert 0.0 <= u.min() and u.max() < 1.0
    counts = np.histogram(u, bins=16, range=(0, 1))[0]
    expected = u.size / 16                                        # chi-square, 15 degrees of freedom:
    assert ((counts - expected) ** 2 / expected).sum() < 37.7     # below it with probability 0.999
    rows = u - u.mean(axis=1, keepdims=True)
    neighbours = (rows[:-1] * rows[1:]).mean(axis=1) / (rows[:-1].std(axis=1) * rows[1:].std(axis=1))
    assert np.abs(neighbours).max() < 0.07                        # 4096 pairs each: 4.5 sigma
    steps = (rows[:, :-1] * rows[:, 1:]).mean() / rows.var()      # element j against j + 1
    assert abs(steps) < 0.01


def test_dropout_outside_a_keyed_block_draws_from_minialex_generator_as_before():
    x = Tensor(np.ones((4, 8), np.float32))
    minialex.manual_seed(5)
    y = F.dropout(x, 0.25).numpy()
    minialex.manual_seed(5)
    keep = backend.rng().random((4, 8), dtype=np.float32) >= 0.25
    np.testing.assert_array_equal(y, keep * np.float32(1 / 0.75))
    with pytest.raises(ValueError, match="one row per sample"):
        with keyed_random.samples([1, 2], seed=0, epoch=0):
            F.dropout(x, 0.5)


def test_auto_ranks_take_one_per_cpu_with_enough_images_each_and_divide_the_batch():
    assert launch.MIN_IMAGES_PER_RANK == 8
    cases = {(32, 1): 1, (32, 2): 2, (32, 16): 4, (24, 3): 3, (20, 4): 2, (12, 2): 1, (48, 5): 4, (1, 8): 1}
    for (batch, cpus), ranks in cases.items():
        assert launch.auto_ranks(batch, cpus) == ranks, (batch, cpus)


def test_ranks_to_start_follows_the_device_the_resumed_run_and_the_launcher(monkeypatch):
    monkeypatch.setattr(launch, "mpi_missing", lambda: None)
    monkeypatch.setattr(launch, "available_cpus", lambda: 4)
    for name in LAUNCHER_RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert launch.ranks_to_start("auto", "cpu", 32) == 4
    assert launch.ranks_to_start("auto", "cuda", 32) == 1                 # one GPU per process, chosen by hand
    assert launch.ranks_to_start("auto", "cpu", 32, resumed_ranks=1) == 1  # a run continues as it was trained
    assert launch.ranks_to_start("auto", "cpu", 32, resumed_ranks=2) == 2
    for hostile in ("2", True, 0, 99, None):                              # not a rank count it can use: the rule
        assert launch.ranks_to_start("auto", "cpu", 32, resumed_ranks=hostile) == 4
    assert launch.ranks_to_start(3, "cpu", 32) == 3                       # asked for: the trainer checks the batch
    monkeypatch.setenv("PMI_RANK", "0")                                   # mpiexec started us: nothing to start
    assert launch.ranks_to_start(2, "cpu", 32) == launch.ranks_to_start("auto", "cpu", 32) == 1
    monkeypatch.delenv("PMI_RANK")
    monkeypatch.setattr(launch, "mpi_missing", lambda: "mpi4py is not installed (pip install 'minialex[mpi]')")
    assert launch.ranks_to_start("auto", "cpu", 32) == 1                  # no MPI: one process, as before
    with pytest.raises(ValueError, match=r"^--ranks 2 starts 2 processes under mpiexec, but mpi4py is not "):
        launch.ranks_to_start(2, "cpu", 32)


@pytest.mark.parametrize("flags, env, message", [
    (["--ranks", "0"], {}, "minialex train: argument --ranks: expected auto or a positive integer, got '0'"),
    (["--ranks", "two"], {}, "minialex train: argument --ranks: expected auto or a positive integer, got 'two'"),
    ([], {"MINIALEX_RANKS": "-1"}, "minialex: error: MINIALEX_RANKS: expected auto or a positive integer, got '-1'"),
])
def test_a_bad_rank_count_is_one_line(flags, env, message, tmp_path):
    code, out, err = run(["train", *QUICK, *flags, "--out", str(tmp_path / "r")], default_ranks=env.get("MINIALEX_RANKS"))
    assert (code, err.strip()) == (2, message)
    assert not (tmp_path / "r").exists()


def test_an_mpiexec_that_cannot_run_is_one_line(tmp_path, monkeypatch, capsys):
    from minialex import cli
    broken = tmp_path / "mpiexec"
    broken.write_text("not a program\n")
    broken.chmod(0o755)                                  # executable, but no #! line and not a binary
    monkeypatch.setattr(launch, "mpiexec_path", lambda: str(broken))
    monkeypatch.setattr(launch, "mpi_missing", lambda: None)
    for name in LAUNCHER_RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["train", *QUICK, "--ranks", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minialex: error: --ranks 2: could not start {broken}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------- under mpiexec
@needs_mpi
def test_collectives_and_gradient_averaging_under_mpiexec():
    code, out, err = run([str(WORKER), "collectives"], ranks=2, timeout=120)
    assert code == 0, err
    # mpiexec merges the ranks' outputs in any order, so look for each rank's words, not for whole lines
    assert sorted(re.findall(r"rank (\d+) ok", out)) == ["0", "1"], out


@pytest.fixture(scope="module")
def one_and_two_ranks(tmp_path_factory):
    """The QUICK run as 1 process ("one") and as 2 ranks ("two"), made once for the tests below, which
    read them and copy them before resuming: (their parent directory, {name: (returncode, stdout, stderr)})."""
    root = tmp_path_factory.mktemp("quick_runs")
    results = {"one": run(["train", *QUICK, "--out", str(root / "one")]),
               "two": run(["train", *QUICK, "--out", str(root / "two")], ranks=2)}
    return root, results


@needs_mpi
def test_two_ranks_train_what_one_process_trains(one_and_two_ranks):
    """Same global batch, dropout and random crops on: the weights agree to float32 round-off."""
    runs, results = one_and_two_ranks
    code, out1, err = results["one"]
    assert code == 0, err
    code, out2, err = results["two"]
    assert code == 0, err
    assert out2.count("done:") == 1 and out2.count("x 2 ranks") == 1      # rank 0 alone prints
    difference = max_difference(weights(runs / "one"), weights(runs / "two"))
    assert difference < TOLERANCE, difference
    meta = load_checkpoint(runs / "two")["meta"]
    assert meta["ranks"] == 2 and meta["batch"] == 0 and meta["epoch"] == 1
    one = load_checkpoint(runs / "one")["meta"]["history"][0]
    two = meta["history"][0]
    assert abs(one["train_loss"] - two["train_loss"]) < 1e-5
    assert abs(one["test_loss"] - two["test_loss"]) < 1e-5
    # the final five-crop test, shared out like the per-epoch one: the same 96 images, counted once
    assert one["final_test"]["views"] == two["final_test"]["views"] == "five-crop"
    assert one["final_test"]["images"] == two["final_test"]["images"] == 96
    assert abs(one["final_test"]["top1_error"] - two["final_test"]["top1_error"]) <= 1 / 96 + 1e-9


@needs_mpi
def test_a_run_resumes_with_another_number_of_ranks(one_and_two_ranks, tmp_path):
    """A checkpoint of 2 ranks holds what one of 1 process holds, and a resume continues the same
    steps whatever the number of ranks: from one checkpoint, 1 process and 2 ranks agree to round-off.

    Each continuation is compared with one from the same checkpoint, not with an uninterrupted run: the
    2-rank state differs from the 1-process one by float32 round-off (~3e-8), and training amplifies
    any such difference once it flips a ReLU. Measured on an AMD EPYC on 2026-12-03: in the next epoch's
    first step one conv4 output was -3.4e-7 in one run and +4.6e-8 in the other, and after 6 more steps
    the weights differed by 3e-4 (an uninterrupted run against a 2-rank checkpoint resumed either way)."""
    runs, results = one_and_two_ranks                                  # 1 process ("one"), 2 ranks ("two")
    assert results["one"][0] == 0 and results["two"][0] == 0
    one, two = load_checkpoint(runs / "one"), load_checkpoint(runs / "two")
    assert max_difference(one["model"], two["model"]) < TOLERANCE
    assert max_difference(one["optimizer"]["velocity"], two["optimizer"]["velocity"]) < TOLERANCE  # momentum
    for key in ("epoch", "batch", "partial", "scheduler", "rng"):                          # the same position
        assert one["meta"][key] == two["meta"][key], key
    assert (one["meta"]["ranks"], two["meta"]["ranks"]) == (1, 2)

    for start in ("one", "two"):               # resume each to epoch 2 under 1 process and under 2 ranks
        for ranks in (None, 2):
            name = f"{start}-{ranks or 1}"
            shutil.copytree(runs / start, tmp_path / name)
            code, out, err = run(["train", "--resume", str(tmp_path / name), "--epochs", "2", "--no-progress"],
                                 ranks=ranks)
            assert code == 0, err
            trained_as = {"one": 1, "two": 2}[start]
            note = (f"note: the run was trained as {trained_as} rank(s), this one runs as {ranks or 1}: each rank "
                    f"sums its share of the batch, so the rest of the run rounds differently from an uninterrupted "
                    f"one (--ranks {trained_as} continues it exactly)")
            assert (note in out) == (trained_as != (ranks or 1)), out
            assert load_checkpoint(tmp_path / name)["meta"]["epoch"] == 2
        difference = max_difference(weights(tmp_path / f"{start}-1"), weights(tmp_path / f"{start}-2"))
        assert difference < TOLERANCE, (start, difference)


@needs_mpi
@pytest.mark.skipif(launch.available_cpus() < 2, reason="--ranks auto starts one rank per CPU: this machine has 1")
def test_the_default_ranks_auto_is_mpiexec_with_one_rank_per_cpu(one_and_two_ranks, tmp_path):
    """Without --ranks, `minialex train` on the CPU runs itself again under mpiexec: QUICK's batch of 16
    gives 2 ranks of 8 images on any machine with 2 CPUs or more, and they compute what `mpiexec -n 2`
    computes, bit for bit. --ranks 1 stays one process; a resume keeps the run's ranks."""
    runs, results = one_and_two_ranks
    code, out, err = run(["train", *QUICK, "--out", str(tmp_path / "auto")], default_ranks=None)
    assert code == 0, err
    assert out.count("x 2 ranks") == 1 and out.count("done:") == 1
    auto, two = load_checkpoint(tmp_path / "auto"), load_checkpoint(runs / "two")
    assert auto["meta"]["ranks"] == 2
    for k in two["model"]:
        np.testing.assert_array_equal(auto["model"][k], two["model"][k])
    code, out, err = run(["train", *QUICK, "--ranks", "1", "--out", str(tmp_path / "one")], default_ranks=None)
    assert code == 0 and "x 2 ranks" not in out and load_checkpoint(tmp_path / "one")["meta"]["ranks"] == 1

    # a resume keeps the run's 2 ranks, so it ends with an uninterrupted 2-rank run's weights, bit for bit
    code, out, err = run(["train", "--resume", str(tmp_path / "auto"), "--epochs", "2", "--no-progress"],
                         default_ranks=None)
    assert code == 0 and "x 2 ranks" in out and "note:" not in out, out + err
    whole = QUICK[:QUICK.index("--epochs")] + ["--epochs", "2"] + QUICK[QUICK.index("--epochs") + 2:]
    code, _, err = run(["train", *whole, "--ranks", "2", "--out", str(tmp_path / "whole")])
    assert code == 0, err
    resumed, uninterrupted = weights(tmp_path / "auto"), weights(tmp_path / "whole")
    for k in uninterrupted:
        np.testing.assert_array_equal(resumed[k], uninterrupted[k])


@needs_mpi
def test_ctrl_c_reaches_every_rank_that_ranks_started(tmp_path):
    """--ranks 2 replaces the process with mpiexec: a SIGINT to its pid reaches both ranks, which finish
    the batch; rank 0 saves the checkpoint and the exit status is 130, as in one process."""
    cmd = [sys.executable, "-m", "minialex", "train", "--epochs", "50", "--batch-size", "16", "--ranks", "2",
           "--no-progress", "--out", str(tmp_path / "r")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()                  # the start line: the ranks are training
        assert "x 2 ranks" in first, first
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 130, err
    assert "interrupted: checkpoint saved to" in out and "Traceback" not in err
    meta = load_checkpoint(tmp_path / "r")["meta"]
    assert meta["ranks"] == 2 and (meta["epoch"], meta["batch"]) != (0, 0)


@needs_mpi
def test_a_rank_count_that_mpiexec_contradicts_is_one_line(tmp_path):
    code, out, err = run(["train", *QUICK, "--ranks", "3", "--out", str(tmp_path / "r")], ranks=2)
    assert code == 2
    assert err.strip() == "minialex: error: --ranks 3, but mpiexec started 2 rank(s): give one or the other"
    assert not (tmp_path / "r").exists()


@needs_mpi
def test_a_batch_the_ranks_do_not_divide_is_one_line(tmp_path):
    code, out, err = run(["train", *QUICK, "--batch-size", "33", "--out", str(tmp_path / "r")], ranks=2)
    assert code == 2
    assert err.strip() == ("minialex: error: --batch-size 33 is the global batch, split over 2 ranks: "
                           "it must be a multiple of 2")
    assert not (tmp_path / "r").exists()
    code, out, err = run(["train", "--epochs", "0"], ranks=2)                 # argparse: once, not per rank
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_an_aborting_rank_waits_until_its_error_line_has_left_the_pipe():
    """MPI_Abort ends the job at once: a line mpiexec has not yet read from the rank's pipe is lost. The
    wait ends as soon as the reader has read it, and after the timeout when nobody does."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream, os.fdopen(read_end, "rb", buffering=0) as reader:
        stream.write("minialex: error: rank 1 of 2: ...\n")
        stream.flush()
        began = time.monotonic()
        wait_until_read([stream], timeout=0.3)                   # nobody reads: the timeout
        assert time.monotonic() - began >= 0.3
        timer = threading.Timer(0.1, reader.read, args=(100,))
        timer.start()
        began = time.monotonic()
        wait_until_read([stream], timeout=5)                     # read after 0.1 s: done then
        timer.join()
        assert time.monotonic() - began < 2
    began = time.monotonic()
    wait_until_read([None, sys.stdout], timeout=5)               # not pipes: no wait
    assert time.monotonic() - began < 1


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_stops_every_rank_and_keeps_the_checkpoint(tmp_path, how):
    """Rank 1 fails at batch 3 of epoch 2, while rank 0 waits for it in the allreduce: every rank stops
    within seconds, the exit status is non-zero, one line names the rank, the epoch-1 checkpoint is good."""
    out, stamp = tmp_path / "run", tmp_path / "failed_at"
    args = ["train", "--epochs", "2", "--max-batches", "6", "--batch-size", "16", "--no-progress", "--out", str(out)]
    code, _, err = run([str(WORKER), "fail", "1", "3", how, str(stamp), "--", *args], ranks=2, timeout=120)
    stopped_after = time.time() - float(stamp.read_text())
    assert code != 0
    if how == "raise":
        lines = [line for line in err.splitlines() if line.startswith("minialex:")]
        assert lines == ["minialex: error: rank 1 of 2: RuntimeError: injected failure at batch 3"], err
    assert "Traceback" not in err
    assert stopped_after < 10, stopped_after
    meta = load_checkpoint(out)["meta"]                                       # the end of epoch 1, intact
    assert (meta["epoch"], meta["batch"]) == (1, 0)
