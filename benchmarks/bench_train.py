"""The main job, timed: `python -m minialex train` on the bundled digits, as a user runs it.

    python benchmarks/bench_train.py                  # the default run (no flags)
    python benchmarks/bench_train.py -- --epochs 12   # flags after -- go to `minialex train`
    python benchmarks/bench_train.py --torch          # then PyTorch doing the same job (bench_torch_train.py)

Runs the command in a fresh process in a temporary run directory, measures its wall time, and
reads the run's metrics.jsonl: per-epoch train loss, test error and seconds, then the final
top-1 accuracy on the 1,000 held-out digits. With --torch it then runs benchmarks/bench_torch_train.py
on the run's config.json in a fresh process (same recipe, data and starting weights, PyTorch with 2
threads) and prints both wall times and their ratio. Prints a Markdown block for benchmarks/RESULTS.md.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ours_argv = argv[:argv.index("--")] if "--" in argv else argv
    with_torch = "--torch" in ours_argv
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "minialex", "train", "--out", out, "--no-progress", *extra]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"bench_train: `minialex train` failed with status {done.returncode}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            epochs = [json.loads(line) for line in f if line.strip()]
        if with_torch:
            records = os.path.join(tmp, "torch.jsonl")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_torch_train.py"), out,
                                   "--threads", "2", "--json", records], cwd=tmp)
            torch_wall = time.perf_counter() - t0
            if done.returncode != 0:
                sys.exit(f"bench_train: bench_torch_train.py failed with status {done.returncode}")
            with open(records) as f:
                torch_epochs = [json.loads(line) for line in f if line.strip()]
    shown = "python -m minialex train" + "".join(f" {a}" for a in extra)
    final = epochs[-1]
    lines = [f"### `{shown}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs; python {platform.python_version()}; "
             f"measured by `python benchmarks/bench_train.py{' -- ' + ' '.join(extra) if extra else ''}`",
             f"- wall time of the whole command (start-up, {len(epochs)} epochs, evaluation, pictures): "
             f"**{wall:.0f} s** ({wall / 60:.1f} min)",
             f"- final test top-1 accuracy on the 1,000 held-out digits: **{100 * (1 - final['test_top1_error']):.1f}%** "
             f"(error {100 * final['test_top1_error']:.2f}%)", "",
             "| epoch | train loss | test top-1 error | seconds |", "|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['train_loss']:.4f} | {100 * e['test_top1_error']:.2f}% | {e['seconds']:.1f} |"
              for e in epochs]
    if with_torch:
        torch_final = torch_epochs[-1]
        lines += ["", f"- PyTorch doing the same job (`benchmarks/bench_torch_train.py`, 2 threads, started after "
                      f"minialex's run): **{torch_wall:.0f} s**, final accuracy "
                      f"**{100 * (1 - torch_final['test_top1_error']):.1f}%**; minialex's speed over PyTorch's: "
                      f"**{torch_wall / wall:.2f}x**", "",
                  "| epoch | PyTorch train loss | PyTorch test top-1 error | seconds |", "|---|---|---|---|"]
        lines += [f"| {e['epoch']} | {e['train_loss']:.4f} | {100 * e['test_top1_error']:.2f}% | {e['seconds']:.1f} |"
                  for e in torch_epochs]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
