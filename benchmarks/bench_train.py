"""The main job, timed: `python -m minialex train` on the bundled digits, as a user runs it.

    python benchmarks/bench_train.py                  # the default run (no flags)
    python benchmarks/bench_train.py -- --epochs 12   # flags after -- go to `minialex train`
    python benchmarks/bench_train.py --torch          # then PyTorch doing the same job (bench_torch_train.py)
    python benchmarks/bench_train.py --torch --rounds 2   # minialex, PyTorch, minialex, PyTorch

minialex runs as its default `--ranks auto` makes it: on the CPU with the `mpi` extra installed, one rank
per CPU under mpiexec (`-- --ranks 1`: one process with minialex's threads); the report says which.
Runs the command in a fresh process in a temporary run directory, measures its wall time, and
reads the run's metrics.jsonl: per-epoch train loss, test error and seconds, then the final
top-1 accuracy on the 1,000 held-out digits (the final multi-view test's, beside the last single view). With --torch it then runs benchmarks/bench_torch_train.py
on the run's config.json in a fresh process (same recipe, data and starting weights, PyTorch with 2
threads) and prints both wall times and their ratio. With --rounds N the pair runs N times in turn
(the host's load changes between jobs of two minutes; turns let both meet it), and a table gives
each round's walls and ratio and their range. Prints a Markdown block for benchmarks/RESULTS.md.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from minialex.train.checkpoint import load_checkpoint  # noqa: E402


def parse_args(argv):
    ours = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="flags after -- go to `minialex train`")
    p.add_argument("--torch", action="store_true", help="then PyTorch doing the same job (bench_torch_train.py)")
    p.add_argument("--rounds", type=int, default=1, help="run the job (and PyTorch's) this many times in turn")
    args = p.parse_args(ours)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    args.extra = argv[argv.index("--") + 1:] if "--" in argv else []
    return args


def run_ours(tmp, extra, name):
    """`minialex train` in a fresh process: (wall seconds, per-epoch records)."""
    out = os.path.join(tmp, name)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "minialex", "train", "--out", out, "--no-progress", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=tmp)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"bench_train: `minialex train` failed with status {done.returncode}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        epochs = [json.loads(line) for line in f if line.strip()]
    epochs[-1]["ranks"] = load_checkpoint(out, meta_only=True)["meta"]["ranks"]     # how --ranks ran it (auto: one per CPU)
    return wall, epochs


def run_torch(tmp, run_dir, name):
    """bench_torch_train.py on a run's config.json in a fresh process: (wall seconds, per-epoch records)."""
    records = os.path.join(tmp, f"{name}.jsonl")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_torch_train.py"), run_dir,
                           "--threads", "2", "--json", records], cwd=tmp)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"bench_train: bench_torch_train.py failed with status {done.returncode}")
    with open(records) as f:
        return wall, [json.loads(line) for line in f if line.strip()]


def epoch_table(epochs, who=""):
    lines = [f"| epoch | {who}train loss | {who}test top-1 error | seconds |", "|---|---|---|---|"]
    return lines + [f"| {e['epoch']} | {e['train_loss']:.4f} | {100 * e['test_top1_error']:.2f}% | {e['seconds']:.1f} |"
                    for e in epochs]


def accuracy(epochs):
    """The run's final top-1 accuracy: its final multi-view test where it has one, else the last single view."""
    final = epochs[-1].get("final_test")
    return 100 * (1 - (final["top1_error"] if final else epochs[-1]["test_top1_error"]))


def accuracy_text(epochs):
    """ "98.4% (5-crop test; single view 98.0%)", or "98.0%" for a run without a final multi-view test."""
    final = epochs[-1].get("final_test")
    single = 100 * (1 - epochs[-1]["test_top1_error"])
    return f"{accuracy(epochs):.1f}% ({final['views']} test; single view {single:.1f}%)" if final else f"{single:.1f}%"


def main(argv):
    args = parse_args(argv)
    rounds = []                                            # (ours wall, ours epochs, torch wall, torch epochs)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            wall, epochs = run_ours(tmp, args.extra, f"run{r}")
            torch_wall, torch_epochs = run_torch(tmp, os.path.join(tmp, f"run{r}"), f"torch{r}") if args.torch \
                else (None, None)
            rounds.append((wall, epochs, torch_wall, torch_epochs))
    shown = "python -m minialex train" + "".join(f" {a}" for a in args.extra)
    wall, epochs, torch_wall, torch_epochs = rounds[-1]
    flags = (" --torch" if args.torch else "") + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
    lines = [f"### `{shown}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs; python {platform.python_version()}; "
             f"measured by `python benchmarks/bench_train.py{flags}{' -- ' + ' '.join(args.extra) if args.extra else ''}`",
             f"- wall time of the whole command (start-up, {len(epochs)} epochs, evaluation, pictures): "
             f"**{wall:.0f} s** ({wall / 60:.1f} min)" + (" (the last round)" if args.rounds > 1 else "")
             + f", as {epochs[-1]['ranks']} process(es) (`--ranks`)",
             f"- final test top-1 accuracy on the 1,000 held-out digits: **{accuracy_text(epochs)}**", ""]
    lines += epoch_table(epochs)
    if args.torch:
        lines += ["", f"- PyTorch doing the same job (`benchmarks/bench_torch_train.py`, 2 threads, started after "
                      f"minialex's run): **{torch_wall:.0f} s**, final accuracy **{accuracy_text(torch_epochs)}**; "
                      f"minialex's speed over PyTorch's: **{torch_wall / wall:.2f}x**", ""]
        lines += epoch_table(torch_epochs, "PyTorch ")
    if args.rounds > 1:
        lines += ["", "| round | minialex s | accuracy | " + ("PyTorch s | accuracy | minialex's speed over PyTorch's |"
                                                             if args.torch else ""),
                  "|---|---|---|" + ("---|---|---|" if args.torch else "")]
        for r, (w, e, tw, te) in enumerate(rounds, 1):
            lines.append(f"| {r} | {w:.0f} | {accuracy_text(e)} | " +
                         (f"{tw:.0f} | {accuracy_text(te)} | {tw / w:.2f}x |" if args.torch else ""))
        if args.torch:
            ratios = sorted(tw / w for w, _, tw, _ in rounds)
            lines += ["", f"- minialex's speed over PyTorch's, {args.rounds} rounds: {ratios[0]:.2f}-{ratios[-1]:.2f}x"]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
