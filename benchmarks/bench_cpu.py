"""CPU benchmark: minialex (NumPy) against PyTorch's CPU backend, in one run, on the same inputs.

    python benchmarks/bench_cpu.py                    # step + forward + every layer, batch 16
    python benchmarks/bench_cpu.py --memory           # also peak RSS of a training step at batch 128
    python benchmarks/bench_cpu.py --threads 2 --repeat 7 --markdown out.md

What it measures (medians over --repeat runs after --warmup runs, time.perf_counter):
  * a large square SGEMM (NumPy's BLAS): the machine's ceiling in GFLOP/s;
  * the paper AlexNet (227x227, 1000 classes) training step (forward, cross-entropy, backward,
    momentum-SGD update) and its forward pass, in images/s;
  * each layer's forward and backward on the shapes it has inside AlexNet (both frameworks with
    --threads BLAS threads);
  * the "mini" net's training step on the digits' shape (1x28x28, 10 classes, --mini-batch 32), with
    the dropout masks drawn per sample (``minialex.keyed_random``) as the trainer draws them.
The two steps and the forward pass run minialex as `python -m minialex train` runs it: 1 BLAS thread
and its own thread pool (which runs each convolution's batch in pieces), PyTorch with --threads; the
two frameworks take turns, step by step, so that both meet the same load on shared cores.
For every row: time, GFLOP/s (for the layers with multiply-adds), the fraction of the SGEMM
ceiling, and the ratio minialex/PyTorch in throughput (> 1 means minialex is faster).

Both frameworks run with glibc's malloc told to keep freed large blocks
(``minialex.backend.reuse_freed_memory``), and get the same thread count: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS for NumPy
(set before NumPy is imported) and torch.set_num_threads for PyTorch. PyTorch is optional
(`pip install torch`); without it only minialex's figures are printed.
"""
import argparse
import itertools
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--batch", type=int, default=16, help="batch size for the step, forward and layers (default 16)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions; the median is reported (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both frameworks (default: all cores)")
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    p.add_argument("--mini-batch", type=int, default=32, help="batch of the mini-net step (default 32, as `train`)")
    p.add_argument("--mini-only", action="store_true", help="only the SGEMM ceiling and the mini-net step")
    p.add_argument("--no-torch", action="store_true", help="do not run PyTorch even if it is installed")
    p.add_argument("--memory", action="store_true", help="measure peak RSS of a training step at --memory-batch")
    p.add_argument("--memory-batch", type=int, default=128, help="batch for --memory (default 128)")
    p.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown to PATH")
    p.add_argument("--_memory-child", dest="memory_child", choices=("minialex", "torch"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's minialex

import minialex  # noqa: E402
minialex.backend.reuse_freed_memory()  # for both frameworks in this process: keep freed big blocks (see its docstring)
import minialex.functional as F  # noqa: E402
from minialex import keyed_random  # noqa: E402
from minialex.models import alexnet  # noqa: E402
from minialex.blas_threads import blas_threads  # noqa: E402
from minialex.optim import SGD  # noqa: E402

try:
    if ARGS.no_torch:
        raise ImportError
    import torch
    torch.set_num_threads(ARGS.threads)
except ImportError:
    torch = None


def alternating_times(fns, repeat, warmup):
    """{name: [seconds, ...]} for each function of ``fns`` (a dict), timed in turns: a, b, a, b, ...
    so that both meet the same load on shared cores; ``warmup`` untimed turns first."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median_time(fn, repeat, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ----------------------------------------------------------------------------- the nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_nets import copy_weights_to_torch, torch_mini_alexnet, torch_paper_alexnet  # noqa: E402


def minialex_step(model, opt, x, t):
    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
    return step


def torch_step(model, opt, x, t):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
    return step


# ----------------------------------------------------------------------------- FLOP counts
# multiply-accumulates per image of the paper net, from the table in docs/alexnet.md
LAYER_MACS = {"conv1": 105_415_200, "conv2": 223_948_800, "conv3": 149_520_384, "conv4": 112_140_288,
              "conv5": 74_760_192, "fc6": 37_748_736, "fc7": 16_777_216, "fc8": 4_096_000}
NET_MACS = sum(LAYER_MACS.values())
# a training step: forward (1x) + backward (2x: data and weights), less conv1's unneeded data gradient
STEP_FLOPS = 2 * (3 * NET_MACS - LAYER_MACS["conv1"])
FORWARD_FLOPS = 2 * NET_MACS


def sgemm_ceiling(n=2048):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    t = median_time(lambda: a @ b, max(ARGS.repeat, 3), 2)
    return 2 * n ** 3 / t / 1e9


# ----------------------------------------------------------------------------- per layer
def layer_cases():
    """(name, input shape, minialex fn(x, params), torch fn(x, params), param shapes, MACs per image)."""
    tF = torch.nn.functional if torch is not None else None
    cases = [
        ("conv1", (3, 227, 227), [(96, 3, 11, 11), (96,)], dict(stride=4, padding=0, groups=1)),
        ("conv2", (96, 27, 27), [(256, 48, 5, 5), (256,)], dict(stride=1, padding=2, groups=2)),
        ("conv3", (256, 13, 13), [(384, 256, 3, 3), (384,)], dict(stride=1, padding=1, groups=1)),
        ("conv4", (384, 13, 13), [(384, 192, 3, 3), (384,)], dict(stride=1, padding=1, groups=2)),
        ("conv5", (384, 13, 13), [(256, 192, 3, 3), (256,)], dict(stride=1, padding=1, groups=2)),
    ]
    out = []
    for name, shape, params, kw in cases:
        out.append((name, shape, params, LAYER_MACS[name],
                    lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw),
                    (lambda x, w, b, kw=kw: tF.conv2d(x, w, b, **kw)) if tF else None))
    for name, c, hw in (("lrn1", 96, 55), ("lrn2", 256, 27)):
        out.append((name, (c, hw, hw), [], 0,
                    lambda x: F.local_response_norm(x, 5, 5e-4, 0.75, 2.0),
                    (lambda x: tF.local_response_norm(x, 5, 5e-4, 0.75, 2.0)) if tF else None))
    for name, c, hw in (("pool1", 96, 55), ("pool2", 256, 27), ("pool5", 256, 13)):
        out.append((name, (c, hw, hw), [], 0, lambda x: F.max_pool2d(x, 3, 2),
                    (lambda x: tF.max_pool2d(x, 3, 2)) if tF else None))
    for name, n_in, n_out in (("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)):
        out.append((name, (n_in,), [(n_out, n_in), (n_out,)], LAYER_MACS[name],
                    lambda x, w, b: F.linear(x, w, b), (lambda x, w, b: tF.linear(x, w, b)) if tF else None))
    return out


def time_layer(fn, arrays, framework):
    """(forward seconds, backward seconds) for fn on arrays (the first is the input)."""
    if framework == "minialex":
        ts = [minialex.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*ts)
        g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
        fwd = median_time(lambda: fn(*ts), ARGS.repeat, ARGS.warmup)

        def bwd():
            for t in ts:
                t.grad = None
            y.backward(g, retain_graph=True)
    else:
        ts = [torch.from_numpy(a).requires_grad_() for a in arrays]
        y = fn(*ts)
        g = torch.from_numpy(np.random.default_rng(2).standard_normal(tuple(y.shape)).astype(np.float32))

        def fwd_fn():
            with torch.enable_grad():
                fn(*ts)
        fwd = median_time(fwd_fn, ARGS.repeat, ARGS.warmup)

        def bwd():
            for t in ts:
                t.grad = None
            torch.autograd.backward(y, g, retain_graph=True)
    return fwd, median_time(bwd, ARGS.repeat, ARGS.warmup)


# ----------------------------------------------------------------------------- memory (subprocess)
def peak_rss_mib():
    """This process's peak resident set (VmHWM) in MiB. (getrusage's ru_maxrss is no good here: on
    Linux a child started by fork+exec inherits the parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def memory_child(framework):
    """Run training steps at --memory-batch and print the peak RSS in MiB (run in a fresh process)."""
    B = ARGS.memory_batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 3, 227, 227), dtype=np.float32)
    t = rng.integers(0, 1000, B)
    base = peak_rss_mib()
    if framework == "minialex":
        model = alexnet("paper")
        step = minialex_step(model, SGD(model.parameters(), lr=0.01), minialex.tensor(x), t)
    else:
        model = torch_paper_alexnet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        step = torch_step(model, opt, torch.from_numpy(x), torch.from_numpy(t))
    step()
    t0 = time.perf_counter()
    step()
    seconds = time.perf_counter() - t0
    print(f"{peak_rss_mib():.0f} {base:.0f} {seconds:.3f}")


def measure_memory(framework):
    cmd = [sys.executable, __file__, "--threads", str(ARGS.threads), "--memory-batch", str(ARGS.memory_batch),
           "--_memory-child", framework]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


# ----------------------------------------------------------------------------- main
def fmt_ratio(ours, theirs):
    return f"{ours / theirs:.2f}x" if theirs else "-"


def main():
    if ARGS.memory_child:
        memory_child(ARGS.memory_child)
        return
    lines = []

    def emit(line=""):
        print(line, flush=True)
        lines.append(line)

    B = ARGS.batch
    emit(f"# minialex CPU benchmark, {time.strftime('%Y-%m-%d')}")
    emit()
    emit(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; threads: {ARGS.threads}")
    emit(f"- python {platform.python_version()}, numpy {np.__version__}, "
         f"torch {torch.__version__ if torch else 'not installed'}; batch {B}, median of {ARGS.repeat} after {ARGS.warmup} warm-up")
    ceiling = sgemm_ceiling()
    emit(f"- SGEMM ceiling (NumPy, 2048^3): {ceiling:.1f} GFLOP/s")
    emit()

    mini_step_table(emit)
    if ARGS.mini_only:
        return write_markdown(lines)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 3, 227, 227), dtype=np.float32)
    t = rng.integers(0, 1000, B)
    minialex.manual_seed(0)
    model = alexnet("paper")
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xt = minialex.tensor(x)
    rows = [("training step", STEP_FLOPS), ("forward", FORWARD_FLOPS)]
    ours_fns = {"training step": minialex_step(model, opt, xt, t), "forward": lambda: model.eval()(xt)}
    theirs_fns = {}
    if torch is not None:
        tmodel = torch_paper_alexnet()
        copy_weights_to_torch(model, tmodel)
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        theirs_fns = {"training step": torch_step(tmodel, topt, tx, tt), "forward": lambda: tmodel.eval()(tx)}
    ours, theirs, spread = {}, {}, {}
    for name, _ in rows:                  # each row: minialex and PyTorch in turns
        fns = {"minialex": ours_fns[name]}
        if name in theirs_fns:
            fns["torch"] = theirs_fns[name]
        with blas_threads(1), (minialex.no_grad() if name == "forward" else _null()), \
                (torch.no_grad() if torch is not None and name == "forward" else _null()):
            times = alternating_times(fns, ARGS.repeat, ARGS.warmup)
        model.train()
        if torch is not None:
            tmodel.train()
        ours[name] = statistics.median(times["minialex"])
        if "torch" in times:
            theirs[name] = statistics.median(times["torch"])
            ratios = sorted(b / a for a, b in zip(times["minialex"], times["torch"]))
            spread[name] = f"{ratios[0]:.2f}-{ratios[-1]:.2f}x"

    emit("## Paper AlexNet (227x227, 1000 classes, batch %d)" % B)
    emit()
    emit("minialex with 1 BLAS thread and its own threads, as `minialex train` runs it; the two frameworks in "
         "turns; the last column: the ratio of the medians, and the range of the ratios of the turns.")
    emit()
    emit("| what | minialex s | minialex img/s | minialex GFLOP/s | of SGEMM | PyTorch s | PyTorch img/s | minialex/PyTorch |")
    emit("|---|---|---|---|---|---|---|---|")
    for name, flops in rows:
        s = ours[name]
        ts = theirs.get(name)
        emit(f"| {name} | {s:.3f} | {B / s:.1f} | {flops * B / s / 1e9:.1f} | {flops * B / s / 1e9 / ceiling:.0%} | "
             f"{f'{ts:.3f}' if ts else '-'} | {f'{B / ts:.1f}' if ts else '-'} | "
             f"{f'{fmt_ratio(ts, s)} ({spread[name]})' if ts else '-'} |")
    emit()

    if not ARGS.no_layers:
        emit(f"## Layers (batch {B}; backward = gradients of the input and the parameters)")
        emit()
        emit("| layer | pass | minialex ms | GFLOP/s | of SGEMM | PyTorch ms | minialex/PyTorch |")
        emit("|---|---|---|---|---|---|---|")
        for name, shape, pshapes, macs, ours_fn, torch_fn in layer_cases():
            arrays = [rng.standard_normal((B,) + shape, dtype=np.float32)]
            arrays += [(0.01 * rng.standard_normal(s)).astype(np.float32) for s in pshapes]
            f_ours, b_ours = time_layer(ours_fn, arrays, "minialex")
            f_t = b_t = None
            if torch_fn is not None:
                f_t, b_t = time_layer(torch_fn, arrays, "torch")
            for pname, s, st, mult in (("forward", f_ours, f_t, 1), ("backward", b_ours, b_t, 2)):
                gf = f"{2 * macs * mult * B / s / 1e9:.1f}" if macs else "-"
                frac = f"{2 * macs * mult * B / s / 1e9 / ceiling:.0%}" if macs else "-"
                emit(f"| {name} | {pname} | {s * 1e3:.2f} | {gf} | {frac} | "
                     f"{f'{st * 1e3:.2f}' if st else '-'} | {fmt_ratio(st, s) if st else '-'} |")
        emit()

    if ARGS.memory:
        emit(f"## Peak memory of a training step at batch {ARGS.memory_batch} (fresh process each)")
        emit()
        emit("| framework | peak RSS MiB | RSS before the model MiB | second step s | img/s |")
        emit("|---|---|---|---|---|")
        for fw in ("minialex",) + (("torch",) if torch is not None else ()):
            peak, base, sec = measure_memory(fw)
            emit(f"| {fw} | {peak:.0f} | {base:.0f} | {sec:.2f} | {ARGS.memory_batch / sec:.1f} |")
        emit()

    write_markdown(lines)


def write_markdown(lines):
    if ARGS.markdown:
        with open(ARGS.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


def mini_step_table(emit):
    """The mini net's training step (forward, loss, backward, momentum SGD) at --mini-batch, both frameworks
    on the same images and weights, timed in alternation: minialex, PyTorch, minialex, ... so that both meet
    the same load on shared cores; the ratio is PyTorch's median time over minialex's."""
    Bm = ARGS.mini_batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((Bm, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, Bm)
    minialex.manual_seed(0)
    model = alexnet("mini", 10, in_channels=1, input_size=28, dropout=0.3)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    plain_step = minialex_step(model, opt, minialex.tensor(x), t)
    indices = rng.permutation(4000)[:Bm]        # a batch of the digits' training indices: they key the masks
    # Each timed step is keyed as a new epoch: in training a sample meets each epoch's mask once. With one key
    # for every step the same masks came back each time and the net learnt the 32 images by their masks (loss
    # 4e-5 after 15 steps; PyTorch's, with fresh masks, 1.8); its gradients then fell into float32's subnormal
    # range, which an Intel Xeon (AVX-512) computes slowly: the step went from 85 to 470 ms there.
    steps_taken = itertools.count()

    def ours_step():                            # dropout masks drawn per sample, as the trainer draws them
        with keyed_random.samples(indices, seed=0, epoch=next(steps_taken)):
            plain_step()
    steps = {"minialex": ours_step}
    if torch is not None:
        tmodel = torch_mini_alexnet(model.config)
        copy_weights_to_torch(model, tmodel)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        steps["torch"] = torch_step(tmodel, topt, torch.from_numpy(x), torch.from_numpy(t))
    with blas_threads(1):                                  # as `minialex train` runs it
        times = alternating_times(steps, max(ARGS.repeat, 10), ARGS.warmup + 2)
    ours = statistics.median(times["minialex"])
    emit(f"## Mini AlexNet training step (1x28x28, 10 classes, batch {Bm}; median of {len(times['minialex'])}, "
         f"the two alternating)")
    emit()
    emit("| framework | median ms | fastest ms | slowest ms | img/s | minialex/PyTorch |")
    emit("|---|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        emit(f"| {name} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f} | {max(ts) * 1e3:.1f} | {Bm / med:.0f} | "
             f"{fmt_ratio(med, ours) if name == 'torch' else '-'} |")
    emit()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
