"""Max-pool benchmark: F.max_pool2d (kernel 3, stride 2) forward and backward on the shapes of AlexNet's
pool1, pool2, pool5 (batch 16) and of the mini net's pools (batch 32), for each pooling algorithm.

    python benchmarks/bench_pool.py                     # every algorithm of F.pool_algorithm
    python benchmarks/bench_pool.py --repeat 41 --algorithms auto
    python benchmarks/bench_pool.py --checkout ../old        # another checkout's minialex (its default only,
                                                             # if it predates F.pool_algorithm)

The algorithms take turns within each repetition (in alternating order), so that load on shared cores
falls on all of them alike; each row gives the median and the quartiles over --repeat repetitions after
--warmup. A checkout without ``F.pool_algorithm`` (before it existed) is timed with its one algorithm,
under the name "default".
"""
import argparse
import contextlib
import os
import platform
import sys
import time

import numpy as np

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = [("AlexNet pool1", (16, 96, 55, 55)), ("AlexNet pool2", (16, 256, 27, 27)),
          ("AlexNet pool5", (16, 256, 13, 13)), ("mini pool1", (32, 32, 28, 28)),
          ("mini pool2", (32, 64, 13, 13)), ("mini pool5", (32, 64, 6, 6))]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--repeat", type=int, default=21, help="timed repetitions (default 21)")
    p.add_argument("--warmup", type=int, default=2, help="untimed repetitions first (default 2)")
    p.add_argument("--algorithms", nargs="+", default=None,
                   help="pool algorithms to time (default: all of F.pool_algorithm's choices)")
    p.add_argument("--checkout", default=CHECKOUT, help="the checkout whose minialex is timed (default: this one)")
    return p.parse_args(argv)


def algorithm_block(F, name):
    return contextlib.nullcontext() if name == "default" else F.pool_algorithm(name)


def time_once(F, x, g):
    """(forward ms, backward ms) of one max_pool2d(x, 3, 2)."""
    t0 = time.perf_counter()
    y = F.max_pool2d(x, 3, 2)
    t1 = time.perf_counter()
    y.backward(g)
    t2 = time.perf_counter()
    x.grad = None
    return 1e3 * (t1 - t0), 1e3 * (t2 - t1)


def main():
    args = parse_args()
    sys.path.insert(0, os.path.abspath(args.checkout))
    import minialex
    import minialex.functional as F
    from minialex.backend import reuse_freed_memory
    reuse_freed_memory()
    if hasattr(F, "pool_algorithm"):
        from minialex.functional.algorithms import POOL_ALGORITHMS
        names = args.algorithms or list(POOL_ALGORITHMS)
    else:
        names = ["default"]
    print(f"# max_pool2d(x, 3, 2), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- minialex from {os.path.dirname(minialex.__file__)}")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; python "
          f"{platform.python_version()}, numpy {np.__version__}; median (q25-q75) of {args.repeat} after {args.warmup}")
    print()
    print("| shape | algorithm | forward ms | backward ms |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for label, shape in SHAPES:
        x = minialex.tensor(rng.standard_normal(shape, dtype=np.float32), requires_grad=True)
        with algorithm_block(F, names[0]):
            g = np.random.default_rng(1).standard_normal(F.max_pool2d(x, 3, 2).shape).astype(np.float32)
        times = {name: [] for name in names}
        for r in range(args.warmup + args.repeat):
            for name in (names if r % 2 else names[::-1]):
                with algorithm_block(F, name):
                    t = time_once(F, x, g)
                if r >= args.warmup:
                    times[name].append(t)
        for name in names:
            a = np.array(times[name])
            cells = [f"{np.median(a[:, i]):.2f} ({np.percentile(a[:, i], 25):.2f}-{np.percentile(a[:, i], 75):.2f})"
                     for i in (0, 1)]
            print(f"| {label} {shape} | {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
