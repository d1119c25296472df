"""Data-parallel training timed: one process against `mpiexec -n 2`, and the model they train compared.

    python benchmarks/bench_distributed.py main [--rounds 3] [--epochs 3] [--max-batches N]   # the main job
    python benchmarks/bench_distributed.py paper [--rounds 3] [--steps 5]   # the paper net, batch 16 per rank
    python benchmarks/bench_distributed.py mini --steps 40  # the mini step: 1 process, 2 ranks, PyTorch
    python benchmarks/bench_distributed.py compare                          # weights after one epoch, K=1 vs 2

``main`` runs `python -m minialex train` (the default job, --epochs E) as three set-ups, in alternating
rounds so that load from other users of the machine falls on all of them alike: one process with two
threads (--threads 2), one process as by default (one BLAS thread, MINIALEX_NUM_THREADS threads for the
elementwise work), and `mpiexec -n 2` (one thread each). Images/s = training images x epochs / the
epochs' seconds (metrics.jsonl; each includes its test pass); --max-batches N shortens every epoch to N
steps of 32 (and N test batches) when the shared machine is too slow for whole epochs. ``paper`` times training steps of the
paper's AlexNet on random 227x227 images, 16 per rank: one process with two threads against two ranks
with one each (forward, backward, the gradient allreduce, the update). ``mini`` times the mini net's step
at a global batch of 32 (as the trainer runs it: masks keyed per sample, one BLAS thread) as one process,
as 2 ranks of 16, and PyTorch's mirror of it with 2 threads (if torch is installed), each in its own
processes. ``compare`` trains 20 steps and one
epoch (125 steps of 32) both ways, with im2col and the default convolution algorithm, and prints the
largest weight difference and the test errors, next to the difference that the convolutions' rounding
alone makes in one process. Prints Markdown for benchmarks/RESULTS.md.
"""
import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def _env(threads=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads is not None:
        env.update(MINIALEX_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def train(out, ranks, extra, threads=None):
    """Run `minialex train`; the per-epoch records of its metrics.jsonl, and the wall time."""
    cmd = [sys.executable, "-m", "minialex", "train", "--out", out, "--no-progress", *extra]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    else:
        cmd.append("--ranks=1")          # one process (on the CPU the default, --ranks auto, starts one per CPU)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=_env(threads), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()], wall


def spread(values):
    return f"{np.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def header(command):
    return [f"### `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
            f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs (shared with the host's other work); "
            f"python {platform.python_version()}, numpy {np.__version__}"]


def main_job(args):
    setups = [("1 process, --threads 2", 1, ["--threads", "2"], 2),
              ("1 process, default threads", 1, [], None),
              ("mpiexec -n 2, 1 thread per rank", 2, [], None)]
    rates = {name: [] for name, *_ in setups}
    walls = {name: [] for name, *_ in setups}
    errors = {name: [] for name, *_ in setups}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, ranks, extra, threads) in enumerate(setups):
                out = os.path.join(tmp, f"{r}-{i}")
                shorten = ["--max-batches", str(args.max_batches)] if args.max_batches else []
                epochs, wall = train(out, ranks, ["--epochs", str(args.epochs), *shorten, *extra], threads)
                images = min(4000, 32 * args.max_batches) if args.max_batches else 4000
                rates[name].append(images * len(epochs) / sum(e["seconds"] for e in epochs))
                walls[name].append(wall)
                errors[name].append(100 * epochs[-1]["test_top1_error"])
                print(f"round {r + 1} {name}: {rates[name][-1]:.0f} img/s, {wall:.0f} s", file=sys.stderr)
    base = rates["1 process, --threads 2"]
    shorten = f" --max-batches {args.max_batches}" if args.max_batches else ""
    lines = header(f"python benchmarks/bench_distributed.py main --rounds {args.rounds} --epochs {args.epochs}{shorten}")
    lines += [f"- `python -m minialex train --epochs {args.epochs}{shorten}` (the default job, shortened), {args.rounds} "
              f"alternating rounds; median (min-max)", "",
              "| set-up | images/s | speed-up over 1 process, 2 threads (per round) | wall s | test error % |",
              "|---|---|---|---|---|"]
    for name, *_ in setups:
        ratios = [a / b for a, b in zip(rates[name], base)]
        lines.append(f"| {name} | {spread(rates[name])} | {np.median(ratios):.2f}x ({min(ratios):.2f}-"
                     f"{max(ratios):.2f}) | {spread(walls[name])} | "
                     f"{', '.join(f'{e:.2f}' for e in errors[name])} |")
    print("\n".join(lines))


def paper_child(steps):
    """Under mpiexec (or alone): time `steps` data-parallel steps of the paper net at batch 16 per rank."""
    sys.path.insert(0, ROOT)
    import minialex
    from minialex import Tensor, backend
    from minialex import functional as F
    from minialex.distributed import DataParallel, world
    from minialex.models import alexnet
    from minialex.optim import SGD
    backend.reuse_freed_memory()
    comm = world()
    minialex.manual_seed(0)
    model = alexnet("paper", 1000)
    optimizer = SGD(model.parameters(), 0.01)
    parallel = DataParallel(model.parameters(), comm)
    parallel.broadcast_parameters()
    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((16, 3, 227, 227)).astype(np.float32)
    y = rng.integers(0, 1000, 16)

    def step(_):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        if comm.size > 1:
            parallel.average_gradients(16, float(loss.item()) * 16)
        optimizer.step()
    median = median_step(step, steps, warmup=1)      # the first step warms the allocator up
    if comm.rank == 0:
        print(json.dumps({"step_s": median, "images": 16 * comm.size}))


def median_step(step, steps, warmup):
    """The median seconds of ``step(i)`` over ``steps`` calls after ``warmup`` untimed ones (i counts all)."""
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[warmup:]))


def alternating_rates(setups, steps, rounds):
    """Each set-up (name, ranks, threads, child command) in its own processes, in alternating rounds; the
    child prints {"step_s", "images"}. Returns {name: [images/s per round]}."""
    rates = {name: [] for name, *_ in setups}
    for r in range(rounds):
        for name, ranks, threads, child in setups:
            cmd = [sys.executable, os.path.abspath(__file__), *child, "--steps", str(steps)]
            if ranks > 1:
                cmd = [MPIEXEC, "-n", str(ranks), *cmd]
            done = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True)
            if done.returncode != 0:                     # the child's own words, not this script's traceback
                said = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
                sys.exit(f"bench_distributed: round {r + 1}, {name} failed with status {done.returncode}: {said}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rates[name].append(result["images"] / result["step_s"])
            print(f"round {r + 1} {name}: {rates[name][-1]:.1f} img/s", file=sys.stderr)
    return rates


def rate_table(rates, base, against):
    """Markdown rows: each set-up's images/s and its speed over set-up ``base``'s, round by round."""
    lines = [f"| set-up | images/s | speed over {against} (per round) |", "|---|---|---|"]
    for name, values in rates.items():
        ratios = [a / b for a, b in zip(values, rates[base])]
        lines.append(f"| {name} | {np.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) | "
                     f"{np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
    return lines


def paper(args):
    setups = [("1 process, 2 threads, batch 16", 1, 2, ["_paper_child"]),
              ("mpiexec -n 2, 1 thread per rank, 16 per rank", 2, 1, ["_paper_child"])]
    rates = alternating_rates(setups, args.steps, args.rounds)
    lines = header(f"python benchmarks/bench_distributed.py paper --rounds {args.rounds} --steps {args.steps}")
    lines += [f"- paper AlexNet, random 227x227 images, median step of {args.steps} after a warm-up step; "
              f"{args.rounds} alternating rounds; median (min-max)", ""]
    print("\n".join(lines + rate_table(rates, setups[0][0], "1 process")))


def mini_child(steps, framework, store):
    """Under mpiexec (or alone): time `steps` training steps of the mini net on a global batch of 32 digit-sized
    images, as `minialex train` runs them (one BLAS thread; dropout masks keyed per sample, a new epoch each
    step; the gradients' allreduce on K ranks), or PyTorch's mirror of the net (K ranks: DistributedDataParallel
    over gloo, rendezvous in the file ``store``)."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import minialex
    from minialex import Tensor, backend, keyed_random
    from minialex import functional as F
    from minialex.blas_threads import set_blas_threads
    from minialex.distributed import DataParallel, world
    from minialex.models import alexnet
    from minialex.optim import SGD
    backend.reuse_freed_memory()
    comm = world()
    rng = np.random.default_rng(0)                     # the same global batch on every rank and framework
    x = rng.standard_normal((32, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    indices = rng.permutation(4000)[:32]               # digits' training indices: they key the masks
    share = slice(comm.rank * 32 // comm.size, (comm.rank + 1) * 32 // comm.size)
    minialex.manual_seed(0)
    model = alexnet("mini", 10, in_channels=1, input_size=28, dropout=0.3)
    if framework == "torch":
        import torch
        from torch_nets import copy_weights_to_torch, torch_mini_alexnet
        torch.set_num_threads(max(1, 2 // comm.size))
        net = torch_mini_alexnet(model.config)
        copy_weights_to_torch(model, net)
        if comm.size > 1:                              # DistributedDataParallel over gloo, the ranks mpiexec started
            import torch.distributed as dist
            dist.init_process_group("gloo", init_method=f"file://{store}", rank=comm.rank, world_size=comm.size)
            net = torch.nn.parallel.DistributedDataParallel(net)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        tx, ty = torch.from_numpy(x[share]), torch.from_numpy(y[share])

        def step(epoch):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(tx), ty).backward()
            optimizer.step()
    else:
        set_blas_threads(1)
        optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        parallel = DataParallel(model.parameters(), comm) if comm.size > 1 else None
        xs, ys = Tensor(x[share]), y[share]

        def step(epoch):
            optimizer.zero_grad()
            with keyed_random.samples(indices[share], seed=0, epoch=epoch):
                loss = F.cross_entropy(model(xs), ys)
            loss.backward()
            if parallel is not None:
                parallel.average_gradients(len(ys), float(loss.item()) * len(ys))
            optimizer.step()
    median = median_step(step, steps, warmup=3)      # each call is keyed as a new epoch
    if comm.rank == 0:
        print(json.dumps({"step_s": median, "images": 32}))


def mini(args):
    store = os.path.join(tempfile.mkdtemp(), "gloo_store")     # PyTorch's rendezvous file, removed after each use
    torch_child = ["_mini_child", "--framework", "torch", "--store", store]
    setups = [("PyTorch, 1 process, 2 threads", 1, 2, torch_child),
              ("PyTorch, 2 processes (DDP, gloo), 1 thread each", 2, 1, torch_child),
              ("minialex, 1 process (--ranks 1)", 1, None, ["_mini_child"]),
              ("minialex, 2 ranks (--ranks 2)", 2, 1, ["_mini_child"])]
    if importlib.util.find_spec("torch") is None:
        print("bench_distributed: PyTorch is not installed: minialex's set-ups only", file=sys.stderr)
        setups = setups[2:]
    try:
        rates = alternating_rates(setups, args.steps, args.rounds)
    finally:
        shutil.rmtree(os.path.dirname(store), ignore_errors=True)
    lines = header(f"python benchmarks/bench_distributed.py mini --rounds {args.rounds} --steps {args.steps}")
    lines += [f"- the mini net's training step at batch 32 (1x28x28, 10 classes; K ranks: 32/K each), median "
              f"step of {args.steps} after 3 warm-up steps, each set-up in its own processes; {args.rounds} "
              f"alternating rounds; median (min-max)", ""]
    print("\n".join(lines + rate_table(rates, setups[0][0], setups[0][0].split(",")[0] + " in 1 process")))


def compare(args):
    sys.path.insert(0, ROOT)
    from minialex.train.checkpoint import load_checkpoint
    lines = header("python benchmarks/bench_distributed.py compare")
    lines += ["- `python -m minialex train --epochs 1 [--max-batches N]` (steps of 32 images, dropout 0.3, random "
              "crops) as 1 process and as `mpiexec -n 2`; the last row compares two 1-process runs whose only "
              "difference is the convolutions' float32 rounding", "",
              "| run | steps | max abs weight difference | test error a | test error b |", "|---|---|---|---|---|"]

    def weights(name):
        return load_checkpoint(os.path.join(tmp, name))["model"]

    def row(what, steps, a, b, err_a, err_b):
        diff = max(float(np.abs(weights(a)[k] - weights(b)[k]).max()) for k in weights(a))
        lines.append(f"| {what} | {steps} | {diff:.2g} | {err_a:.2f}% | {err_b:.2f}% |")
    with tempfile.TemporaryDirectory() as tmp:
        errors = {}
        for algorithm, steps in (("im2col", 20), ("im2col", 125), ("auto", 125)):
            flags = ["--epochs", "1", "--conv-algorithm", algorithm, "--max-batches", str(steps)]
            for ranks in (1, 2):
                name = f"{ranks}-{algorithm}-{steps}"
                errors[name] = 100 * train(os.path.join(tmp, name), ranks, flags)[0][-1]["test_top1_error"]
            row(f"a: 1 process, b: mpiexec -n 2 (--conv-algorithm {algorithm})", steps, f"1-{algorithm}-{steps}",
                f"2-{algorithm}-{steps}", errors[f"1-{algorithm}-{steps}"], errors[f"2-{algorithm}-{steps}"])
        row("a: 1 process im2col, b: 1 process auto", 125, "1-im2col-125", "1-auto-125", errors["1-im2col-125"],
            errors["1-auto-125"])
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("main", "paper", "mini", "compare", "_paper_child", "_mini_child"))
    parser.add_argument("--framework", choices=("minialex", "torch"), default="minialex")
    parser.add_argument("--store", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--max-batches", type=int, default=None)
    a = parser.parse_args()
    if not a.what.startswith("_") and MPIEXEC is None:
        sys.exit("bench_distributed: no mpiexec found (pip install '.[mpi]')")
    {"main": main_job, "paper": paper, "mini": mini, "compare": compare, "_paper_child": lambda a: paper_child(a.steps),
     "_mini_child": lambda a: mini_child(a.steps, a.framework, a.store)}[a.what](a)
