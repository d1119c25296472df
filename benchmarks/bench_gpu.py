"""GPU benchmark of minialex's CUDA kernels against cuDNN, on AlexNet's shapes (batch 128).

    python benchmarks/bench_gpu.py [--batch 128] [--iters 20] [--calls 20] [--out benchmarks/RESULTS_gpu.md]
    python benchmarks/bench_gpu.py --parts conv --layers conv2 conv3 --iters 5

Needs a CUDA GPU, CuPy and PyTorch (for the cuDNN baselines; memory shared through DLPack); runs
from a source checkout with no install (it puts the checkout first on sys.path). In one run it
measures:
  * ceilings: device-to-device copy bandwidth, and SGEMM throughput (FP32 and TF32) via torch.mm,
    each SGEMM checked against float64: FP32 must be FP32-accurate, TF32 must not be, and the FP32
    rate must be below the TF32 rate (else TF32 was not really off, or not really on);
  * conv1..conv5 (Caffe's grouped AlexNet): every version of our forward, backward-data and
    backward-weight kernels, against cuDNN (torch, benchmark mode) with TF32 off (FP32 vs FP32;
    its error against float64 must be FP32's, not TF32's), then cuDNN again with TF32 on (a
    different precision: stated in the table);
  * LRN (size 5, alpha 1e-4, beta 0.75, k 2) forward and backward on the outputs of conv1 and conv2,
    against cuDNN's own cudnnLRNCrossChannelForward/Backward (ctypes into libcudnn) and against
    torch.nn.functional.local_response_norm (a composite of several kernels, not cuDNN);
  * max-pool 3/2 forward and backward against cuDNN's pooling (ctypes) and PyTorch's native kernel.
Every kernel of ours (and the cuDNN calls) is validated against a float64 reference computed on the
GPU before it is timed; a row that fails validation is reported as such and not timed. Every row is
written (and flushed) to --out as soon as it is measured, and each part is guarded, so a failure
costs its own row only; the exit status is 1 if any row failed.

Times are medians over --iters samples after --warmup calls, measured with CUDA events on the null
stream (which CuPy and PyTorch both use). A sample of the convolutions is one call; of LRN and
pooling (tens of microseconds each) it is --calls back-to-back calls between one pair of events,
divided by --calls, so that launch overhead overlaps the kernels. A time marked "(host-bound)" is
one where enqueueing the calls took about as long as running them: the GPU waited for Python, and
the kernel itself is faster than shown. Each row gives the time, TFLOP/s or GB/s, the percentage of
the measured ceiling, and the ratio of its time to the cuDNN FP32 time (>1: slower than cuDNN).
"""
import argparse
import ctypes
import datetime
import glob
import math
import os
import statistics
import sys
import time
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the checkout's minialex: runs with no install
os.environ.setdefault("CUPY_TF32", "0")  # CuPy's matmul (version 1 of conv) in true FP32

from minialex.shapes import conv_output_size  # noqa: E402  (no CuPy: runs where the GPU is missing)

ALEXNET_CONVS = {  # name: (C, H, W, O, k, stride, padding, groups), input 3x227x227
    "conv1": (3, 227, 227, 96, 11, 4, 0, 1),
    "conv2": (96, 27, 27, 256, 5, 1, 2, 2),
    "conv3": (256, 13, 13, 384, 3, 1, 1, 1),
    "conv4": (384, 13, 13, 384, 3, 1, 1, 2),
    "conv5": (384, 13, 13, 256, 3, 1, 1, 2),
}
CONV_PASSES = ("fwd", "bwd_data", "bwd_weight")
LRN_SHAPES = {"lrn1 (96x55x55)": (96, 55, 55), "lrn2 (256x27x27)": (256, 27, 27)}
POOL_SHAPES = {"pool1 (96x55x55)": (96, 55, 55), "pool2 (256x27x27)": (256, 27, 27),
               "pool5 (256x13x13)": (256, 13, 13)}
POOL_KERNEL, POOL_STRIDE = 3, 2
LRN_ARGS = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
PARTS = ("conv", "lrn", "pool")

TOLERANCE = 1e-4     # max |ours - ref| / max |ref|, float32 against float64
# A GEMM-like reduction in FP32 lands near 5e-7 of max |ref| on these shapes, in TF32 (inputs
# rounded to 10 mantissa bits) near 3e-4 (both simulated with NumPy on the CPU, K = 363 .. 93312):
# an error above STRICT_FP32 means the "FP32" figure was computed in TF32.
STRICT_FP32 = 3e-5
FP32_OVER_TF32_MAX = 0.5   # the FP32 SGEMM ceiling must be below half the TF32 one (H100/H200: ~1/7)
HOST_BOUND = 0.8           # host time per call >= 80% of GPU time per call: "(host-bound)"


# ---- command line ---------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse's errors in one line, status 2, no usage dump."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def parse_args(argv=None):
    p = _Parser(prog="bench_gpu.py", description=__doc__.split("\n")[0], epilog=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=_int_at_least(1), default=128, help="batch size (default 128)")
    p.add_argument("--iters", type=_int_at_least(1), default=20, help="timed samples; the median is reported (default 20)")
    p.add_argument("--warmup", type=_int_at_least(0), default=5, help="untimed calls first (default 5)")
    p.add_argument("--calls", type=_int_at_least(1), default=20,
                   help="back-to-back calls per sample for LRN and pooling (default 20)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                   help=f"what to run after the ceilings: any of {', '.join(PARTS)} (default all)")
    p.add_argument("--layers", nargs="+", choices=list(ALEXNET_CONVS), default=list(ALEXNET_CONVS),
                   metavar="LAYER", help="conv layers to run (default all five)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "RESULTS_gpu.md"),
                   help="Markdown table, written row by row (default benchmarks/RESULTS_gpu.md)")
    args = p.parse_args(argv)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        p.error(f"argument --out: folder {out_dir} does not exist")
    return args


# ---- what each row counts -------------------------------------------------------------------------
def conv_flops(N, C, H, W, O, k, s, p, g):
    """Useful FLOPs of one pass of a convolution (forward, backward-data and backward-weight alike):
    2 per multiply-add, N * O * OH * OW outputs of (C / g) * k * k terms each."""
    OH, OW = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
    return 2 * N * O * OH * OW * (C // g) * k * k


def conv_timing(warmup, iters, pas, version, stride):
    """(warmup, iters) for one conv row. Versions 2 and 3 compute backward-data as a gather over all
    kernel offsets of every dx pixel, stride^2 times the useful work (conv1: 16x): fewer samples."""
    waste = stride * stride if pas == "bwd_data" and version in (2, 3) else 1
    return (min(warmup, max(1, math.ceil(warmup / waste))),
            min(iters, max(3, math.ceil(iters / waste))))


def lrn_bytes(numel):
    """Bytes each LRN implementation must move (4 per float), by (pass, implementation)."""
    return {("fwd", "cuDNN"): 2 * 4 * numel,                     # read x, write y
            ("fwd", "torch local_response_norm"): 2 * 4 * numel,
            ("fwd", "minialex v1 (y and scale)"): 3 * 4 * numel,  # also writes the scale
            ("bwd", "cuDNN"): 4 * 4 * numel,                     # read y, dy, x, write dx
            ("bwd", "torch autograd"): 4 * 4 * numel,
            ("bwd", "minialex v1"): 4 * 4 * numel}               # read x, scale, gy, write dx


def pool_bytes(x_numel, y_numel):
    """Bytes each max-pool implementation must move, by (pass, implementation)."""
    fwd = 4 * (x_numel + y_numel)          # read x, write y
    bwd = 4 * (x_numel + 2 * y_numel)      # read gy and (argmax or y), write dx
    return {("fwd", "cuDNN"): fwd,
            ("fwd", "torch max_pool2d (indices)"): fwd + 8 * y_numel,      # int64 indices
            ("fwd", "minialex v1 (y and argmax)"): fwd + 4 * y_numel,      # int32 argmax
            ("bwd", "cuDNN"): bwd + 4 * x_numel,                           # also reads x
            ("bwd", "torch autograd"): bwd + 4 * y_numel,                  # int64 indices
            ("bwd", "minialex v1 (gather)"): bwd}


# ---- the table, written row by row --------------------------------------------------------------
COLUMNS = ("op", "shape", "implementation", "ms", "rate", "% peak", "x cuDNN", "err")


def _cell(text):
    """Text made safe for one Markdown table cell."""
    return " ".join(str(text).replace("|", "/").split())[:300]


def format_row(op, shape, impl, ms, work, unit, peak=None, baseline_ms=None, err=None, note=""):
    """One Markdown row: work is FLOPs (unit TFLOP/s) or bytes (GB/s) of one call."""
    rate = work / (ms * 1e-3) / (1e12 if unit == "TFLOP/s" else 1e9)
    pct = f"{100.0 * rate / peak:.0f}%" if peak else "-"
    ratio = f"{ms / baseline_ms:.2f}" if baseline_ms else "-"
    err_s = f"{err:.1e}" if err is not None else "-"
    cells = (op, shape, impl, f"{ms:.4f}{note}", f"{rate:.2f} {unit}", pct, ratio, err_s)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def format_failure(op, shape, impl, why):
    return "| " + " | ".join(_cell(c) for c in (op, shape, impl, f"FAILED: {why}")) + " | | | | |"


class Table:
    """The results file: the header at once, then each row as it is measured (flushed)."""

    def __init__(self, path, header_lines):
        self.path, self.failed = path, []
        self.file = open(path, "w")
        self._write("\n".join(list(header_lines) + [
            "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]))

    def _write(self, line):
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()

    def add(self, op, shape, impl, ms, work, unit, peak=None, baseline_ms=None, err=None, note="",
            problem=None):
        """A measured row; with ``problem`` it also counts as failed (shown in the err column)."""
        row = format_row(op, shape, impl, ms, work, unit, peak, baseline_ms, err, note)
        if problem:
            self.failed.append(f"{op} {shape} {impl}: {problem}")
            row = row[:-2] + f" FAILED: {_cell(problem)} |"
        self._write(row)

    def fail(self, op, shape, impl, why):
        self.failed.append(f"{op} {shape} {impl}: {why}")
        self._write(format_failure(op, shape, impl, why))

    def close(self):
        self.file.close()


def describe(exc):
    return f"{type(exc).__name__}: {exc}"


# ---- timing -------------------------------------------------------------------------------------
class Timing(NamedTuple):
    ms: float          # median GPU time of one call
    host_bound: bool   # enqueueing took >= HOST_BOUND of the GPU time: the GPU waited for Python

    @property
    def note(self):
        return " (host-bound)" if self.host_bound else ""


class CudaEvents:
    """GPU time between two points of the null stream (CuPy's and PyTorch's default stream)."""

    def __init__(self):
        import cupy
        self.cupy = cupy

    def start(self):
        event = self.cupy.cuda.Event()
        event.record()
        return event

    def stop_ms(self, start):
        stop = self.cupy.cuda.Event()
        stop.record()
        stop.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, stop)

    def synchronize(self):
        self.cupy.cuda.Device().synchronize()


def median_time(fn, warmup, iters, calls=1, clock=None):
    """Median GPU time of one fn() over ``iters`` samples of ``calls`` back-to-back calls each."""
    clock = clock or CudaEvents()
    for _ in range(warmup):
        fn()
    clock.synchronize()
    gpu, host = [], []
    for _ in range(iters):
        start = clock.start()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        host.append((time.perf_counter() - t0) * 1e3 / calls)
        gpu.append(clock.stop_ms(start) / calls)
    ms = statistics.median(gpu)
    return Timing(ms, statistics.median(host) >= HOST_BOUND * ms)


def set_tf32(torch, matmul=None, conv=None):
    """Allow (True) or forbid (False) TF32 in torch's cuBLAS matmuls and cuDNN convolutions: through
    fp32_precision ("tf32" / "ieee") where PyTorch has it (2.9 on), else the older allow_tf32."""
    for on, new, old in ((matmul, torch.backends.cuda.matmul, torch.backends.cuda.matmul),
                         (conv, getattr(torch.backends.cudnn, "conv", None), torch.backends.cudnn)):
        if on is None:
            continue
        if hasattr(new, "fp32_precision"):
            new.fp32_precision = "tf32" if on else "ieee"
        else:
            old.allow_tf32 = on


def rel_error(out, ref):
    """max |out - ref| / max |ref| (torch tensors or cupy arrays, compared in float64)."""
    import torch
    out, ref = torch.as_tensor(out).double(), torch.as_tensor(ref).double()
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


# ---- cuDNN through ctypes (LRN and pooling are not reachable from PyTorch's cuDNN bindings) -------
CUDNN_SONAMES = ("libcudnn.so.9", "libcudnn.so.8", "libcudnn.so")


def mapped_libraries(prefix, maps="/proc/self/maps"):
    """Paths of the shared libraries named prefix* mapped into this process, in load order."""
    paths = []
    try:
        with open(maps) as f:
            for line in f:  # address perms offset device inode [path]
                fields = line.split(maxsplit=5)
                path = fields[5].strip() if len(fields) == 6 else ""
                name = os.path.basename(path)
                if name.startswith(prefix) and ".so" in name and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def load_cudnn():
    """The libcudnn libraries (ctypes.CDLL), found wherever PyTorch loaded them from.

    In this order: the libcudnn* files already mapped into the process (PyTorch loads cuDNN with
    its CUDA libraries; CUDA 13 wheels keep it outside torch/lib), the sonames through the dynamic
    loader (which finds a library already loaded), then the wheel folders torch/lib and
    site-packages/nvidia/*/lib. Returns (libraries, where they came from).
    """
    import torch
    if torch.cuda.is_available():   # a tiny convolution: cuDNN's sub-libraries get loaded too
        torch.backends.cudnn.version()
        x = torch.ones(1, 1, 3, 3, device="cuda")
        torch.nn.functional.conv2d(x, x)
    tried, libs, where = [], [], []

    def try_load(name):
        tried.append(name)
        try:
            libs.append(ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL))
            where.append(name)
        except OSError:
            pass

    for path in mapped_libraries("libcudnn"):
        try_load(path)
    if not libs:
        for name in CUDNN_SONAMES:
            try_load(name)
            if libs:
                break
    if not libs:
        dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
        for p in sys.path:
            dirs += sorted(glob.glob(os.path.join(p, "nvidia", "*", "lib")))
            dirs += sorted(glob.glob(os.path.join(p, "nvidia", "*", "*", "lib")))
        for d in dirs:
            for path in sorted(glob.glob(os.path.join(d, "libcudnn*.so*"))):
                try_load(path)
    if not libs:
        raise RuntimeError(f"libcudnn not found (tried {', '.join(tried) or 'nothing'})")
    return libs, where


class CuDNN:
    NCHW, FLOAT, LRN_CROSS_CHANNEL, POOL_MAX, NOT_PROPAGATE_NAN = 0, 0, 0, 0, 0

    def __init__(self):
        self.libs, self.where = load_cudnn()
        self.handle = ctypes.c_void_p()
        self.call("cudnnCreate", ctypes.byref(self.handle))
        self.one, self.zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def function(self, name):
        for lib in self.libs:
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn
        raise RuntimeError(f"{name} not found in {', '.join(self.where)}")

    def call(self, name, *args):
        fn = self.function(name)
        fn.restype = ctypes.c_int
        status = fn(*args)
        if status != 0:
            raise RuntimeError(f"{name} returned cuDNN status {status}")

    def version(self):
        fn = self.function("cudnnGetVersion")
        fn.restype = ctypes.c_size_t
        return int(fn())

    def tensor(self, shape):
        desc = ctypes.c_void_p()
        self.call("cudnnCreateTensorDescriptor", ctypes.byref(desc))
        self.call("cudnnSetTensor4dDescriptor", desc, self.NCHW, self.FLOAT, *map(ctypes.c_int, shape))
        return desc

    def lrn(self, size, alpha, beta, k):
        desc = ctypes.c_void_p()
        self.call("cudnnCreateLRNDescriptor", ctypes.byref(desc))
        self.call("cudnnSetLRNDescriptor", desc, ctypes.c_uint(size), ctypes.c_double(alpha),
                  ctypes.c_double(beta), ctypes.c_double(k))
        return desc

    def lrn_forward(self, desc, td, x, y):
        self.call("cudnnLRNCrossChannelForward", self.handle, desc, self.LRN_CROSS_CHANNEL,
                  ctypes.byref(self.one), td, ptr(x), ctypes.byref(self.zero), td, ptr(y))

    def lrn_backward(self, desc, td, y, dy, x, dx):
        self.call("cudnnLRNCrossChannelBackward", self.handle, desc, self.LRN_CROSS_CHANNEL,
                  ctypes.byref(self.one), td, ptr(y), td, ptr(dy), td, ptr(x),
                  ctypes.byref(self.zero), td, ptr(dx))

    def pooling(self, k, s, p):
        desc = ctypes.c_void_p()
        self.call("cudnnCreatePoolingDescriptor", ctypes.byref(desc))
        self.call("cudnnSetPooling2dDescriptor", desc, self.POOL_MAX, self.NOT_PROPAGATE_NAN,
                  *map(ctypes.c_int, (k, k, p, p, s, s)))
        return desc

    def pool_forward(self, desc, xd, x, yd, y):
        self.call("cudnnPoolingForward", self.handle, desc, ctypes.byref(self.one), xd, ptr(x),
                  ctypes.byref(self.zero), yd, ptr(y))

    def pool_backward(self, desc, yd, y, dy, xd, x, dx):
        self.call("cudnnPoolingBackward", self.handle, desc, ctypes.byref(self.one), yd, ptr(y),
                  yd, ptr(dy), xd, ptr(x), ctypes.byref(self.zero), xd, ptr(dx))


def ptr(a):
    return ctypes.c_void_p(a.data_ptr() if hasattr(a, "data_ptr") else a.data.ptr)


# ---- the benchmarks -------------------------------------------------------------------------------
class Ceilings(NamedTuple):
    copy_gbs: float      # None when the copy could not be measured
    fp32_tflops: float   # None when the SGEMM could not be measured
    tf32_tflops: float


def ceilings(args, table):
    """Copy bandwidth and SGEMM rates, as rows; the SGEMMs' precision is checked against float64."""
    import cupy
    import torch
    copy_gbs = fp32 = tf32 = None
    n = 1 << 28  # 1 GiB of float32
    shape = "1 GiB float32"
    try:
        a, b = cupy.random.random(n, dtype=cupy.float32), cupy.empty(n, cupy.float32)
        t = median_time(lambda: b.__setitem__(Ellipsis, a), args.warmup, args.iters)
        copy_gbs = 2 * 4 * n / (t.ms * 1e-3) / 1e9
        table.add("ceiling: copy", shape, "cupy d2d (read + write)", t.ms, 2 * 4 * n, "GB/s")
        del a, b
    except Exception as exc:
        table.fail("ceiling: copy", shape, "cupy d2d", describe(exc))
    m = 8192
    shape = f"{m}^3"
    try:
        x, y = torch.randn(m, m, device="cuda"), torch.randn(m, m, device="cuda")
        ref = torch.mm(x.double(), y.double())
    except Exception as exc:
        table.fail("ceiling: SGEMM", shape, "torch.mm", describe(exc))
        return Ceilings(copy_gbs, None, None)
    rates = {}
    for allow_tf32 in (False, True):
        label = "torch.mm " + ("TF32" if allow_tf32 else "FP32")
        try:
            set_tf32(torch, matmul=allow_tf32)
            err = rel_error(torch.mm(x, y), ref)
            t = median_time(lambda: torch.mm(x, y), args.warmup, args.iters)
            rates[allow_tf32] = 2 * m ** 3 / (t.ms * 1e-3) / 1e12
            problem = None
            if not allow_tf32 and not err < STRICT_FP32:
                problem = f"error {err:.1e} >= {STRICT_FP32:.0e}: not FP32 (TF32 on?)"
            elif allow_tf32 and err < STRICT_FP32:
                problem = f"error {err:.1e} < {STRICT_FP32:.0e}: FP32 accuracy, TF32 not in effect"
            elif allow_tf32 and False in rates and not rates[False] < FP32_OVER_TF32_MAX * rates[True]:
                problem = (f"FP32 rate {rates[False]:.1f} is not below {FP32_OVER_TF32_MAX} x the TF32 "
                           f"rate {rates[True]:.1f}")
            table.add("ceiling: SGEMM", shape, label, t.ms, 2 * m ** 3, "TFLOP/s", err=err,
                      note=t.note, problem=problem)
        except Exception as exc:
            table.fail("ceiling: SGEMM", shape, label, describe(exc))
        finally:
            set_tf32(torch, matmul=False)
    del x, y, ref
    torch.cuda.empty_cache()
    return Ceilings(copy_gbs, rates.get(False), rates.get(True))


def bench_convs(args, table, peaks):
    import cupy
    import torch
    from minialex.cuda import kernels
    aten = torch.ops.aten
    for name in args.layers:
        C, H, W, O, k, s, p, g = ALEXNET_CONVS[name]
        N = args.batch
        OH = conv_output_size(H, k, s, p)
        flops = conv_flops(N, C, H, W, O, k, s, p, g)
        shape = f"{name} N{N} {C}x{H}x{W} -> {O}x{OH}x{OH} k{k}/s{s}/p{p}/g{g}"
        try:
            x = cupy.random.standard_normal((N, C, H, W), dtype=cupy.float32)
            w = cupy.random.standard_normal((O, C // g, k, k), dtype=cupy.float32) * (1.0 / (C // g * k * k)) ** 0.5
            dy = cupy.random.standard_normal((N, O, OH, OH), dtype=cupy.float32)
            tx, tw, tdy = (torch.from_dlpack(a) for a in (x, w, dy))
            ref = {"fwd": torch.nn.functional.conv2d(tx.double(), tw.double(), None, s, p, 1, g)}
            ref["bwd_data"], ref["bwd_weight"], _ = aten.convolution_backward(
                tdy.double(), tx.double(), tw.double(), None, [s, s], [p, p], [1, 1], False, [0, 0], g,
                [True, True, False])
        except Exception as exc:
            table.fail("conv", shape, "inputs and float64 references", describe(exc))
            continue
        ours = {
            "fwd": lambda v: kernels.conv2d_forward(x, w, None, s, p, g, version=v),
            "bwd_data": lambda v: kernels.conv2d_backward_data(dy, w, x.shape, s, p, g, version=v),
            "bwd_weight": lambda v: kernels.conv2d_backward_weight(x, dy, w.shape, s, p, g, version=v, bias=False)[0],
        }
        cudnn = {
            "fwd": lambda: torch.nn.functional.conv2d(tx, tw, None, s, p, 1, g),
            "bwd_data": lambda: aten.convolution_backward(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False,
                                                          [0, 0], g, [True, False, False])[0],
            "bwd_weight": lambda: aten.convolution_backward(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False,
                                                            [0, 0], g, [False, True, False])[1],
        }
        for pas in CONV_PASSES:
            op = f"conv {pas}" + (" (not needed for the input layer)" if pas == "bwd_data" and name == "conv1" else "")
            base = {}
            for tf32 in (False, True):
                label = "cuDNN TF32" if tf32 else "cuDNN FP32"
                try:
                    set_tf32(torch, conv=tf32)
                    err = rel_error(cudnn[pas](), ref[pas])
                    t = median_time(cudnn[pas], args.warmup, args.iters)
                    base[tf32] = t.ms
                    problem = None
                    if not tf32 and not err < STRICT_FP32:
                        problem = f"error {err:.1e} >= {STRICT_FP32:.0e}: not FP32 (TF32 on?)"
                    table.add(op, shape, label, t.ms, flops, "TFLOP/s",
                              peaks.tf32_tflops if tf32 else peaks.fp32_tflops, base.get(False), err,
                              t.note, problem)
                except Exception as exc:
                    table.fail(op, shape, label, describe(exc))
                finally:
                    set_tf32(torch, conv=False)
            for v in (1, 2, 3):
                label = f"minialex v{v}"
                try:
                    err = rel_error(ours[pas](v), ref[pas])
                    if not err < TOLERANCE:
                        table.fail(op, shape, label, f"validation: error {err:.1e} >= {TOLERANCE:.0e}")
                        continue
                    warmup, iters = conv_timing(args.warmup, args.iters, pas, v, s)
                    t = median_time(lambda: ours[pas](v), warmup, iters)
                    table.add(op, shape, label + (f" ({iters} samples)" if iters != args.iters else ""),
                              t.ms, flops, "TFLOP/s", peaks.fp32_tflops, base.get(False), err, t.note)
                except Exception as exc:
                    table.fail(op, shape, label, describe(exc))
        del x, w, dy, tx, tw, tdy, ref
        cupy.get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()


class Run(NamedTuple):
    """One implementation of one pass: setup() runs it once and returns (fn to time, its output)."""
    pas: str
    impl: str
    setup: object


def time_memory_bound(args, table, op, shape, runs, ref, nbytes, copy_gbs):
    """Validate then time each run; cuDNN (first of its pass, when it works) is the baseline."""
    base = {}
    for pas, impl, setup in runs:
        try:
            fn, out = setup()
            err = rel_error(out, ref[pas])
            if not err < TOLERANCE:
                table.fail(f"{op} {pas}", shape, impl, f"validation: error {err:.1e} >= {TOLERANCE:.0e}")
                continue
            t = median_time(fn, args.warmup, args.iters, calls=args.calls)
        except Exception as exc:
            table.fail(f"{op} {pas}", shape, impl, describe(exc))
            continue
        if impl == "cuDNN":
            base[pas] = t.ms
        table.add(f"{op} {pas}", shape, impl, t.ms, nbytes[(pas, impl)], "GB/s", copy_gbs,
                  base.get(pas), err, t.note)


def bench_lrn(args, table, copy_gbs, dnn):
    import cupy
    import torch
    from minialex.cuda import kernels
    F = torch.nn.functional
    size, alpha, beta, k = (LRN_ARGS[a] for a in ("size", "alpha", "beta", "k"))
    for name, (C, H, W) in LRN_SHAPES.items():
        N = args.batch
        shape, shape4 = f"{name} N{N}", (N, C, H, W)
        try:
            x = cupy.maximum(cupy.random.standard_normal(shape4, dtype=cupy.float32) * 4, 0)  # after ReLU
            gy = cupy.random.standard_normal(shape4, dtype=cupy.float32)
            tx, tgy = torch.from_dlpack(x), torch.from_dlpack(gy)
            xd = tx.double().requires_grad_()
            yd = F.local_response_norm(xd, size, alpha, beta, k)
            ref = {"fwd": yd.detach(), "bwd": torch.autograd.grad(yd, xd, tgy.double())[0]}
        except Exception as exc:
            table.fail("lrn", shape, "inputs and float64 references", describe(exc))
            continue

        def cudnn_fwd():
            td, desc = dnn.tensor(shape4), dnn.lrn(size, alpha, beta, k)
            cy = cupy.empty_like(x)
            dnn.lrn_forward(desc, td, x, cy)
            return (lambda: dnn.lrn_forward(desc, td, x, cy)), cy

        def cudnn_bwd():
            td, desc = dnn.tensor(shape4), dnn.lrn(size, alpha, beta, k)
            cy, cdx = cupy.empty_like(x), cupy.empty_like(x)
            dnn.lrn_forward(desc, td, x, cy)
            dnn.lrn_backward(desc, td, cy, gy, x, cdx)
            return (lambda: dnn.lrn_backward(desc, td, cy, gy, x, cdx)), cdx

        def torch_fwd():
            return (lambda: F.local_response_norm(tx, size, alpha, beta, k)), F.local_response_norm(tx, size, alpha, beta, k)

        def torch_bwd():
            txg = tx.clone().requires_grad_()
            ty = F.local_response_norm(txg, size, alpha, beta, k)
            grad = lambda: torch.autograd.grad(ty, txg, tgy, retain_graph=True)[0]  # noqa: E731
            return grad, grad()

        def ours_fwd():
            return (lambda: kernels.lrn_forward(x, size, alpha, beta, k)), kernels.lrn_forward(x, size, alpha, beta, k)[0]

        def ours_bwd():
            _, scale = kernels.lrn_forward(x, size, alpha, beta, k)
            return ((lambda: kernels.lrn_backward(x, scale, gy, size, alpha, beta)),
                    kernels.lrn_backward(x, scale, gy, size, alpha, beta))

        runs = ([Run("fwd", "cuDNN", cudnn_fwd)] if dnn else []) + [
            Run("fwd", "torch local_response_norm", torch_fwd), Run("fwd", "minialex v1 (y and scale)", ours_fwd)] + (
            [Run("bwd", "cuDNN", cudnn_bwd)] if dnn else []) + [
            Run("bwd", "torch autograd", torch_bwd), Run("bwd", "minialex v1", ours_bwd)]
        time_memory_bound(args, table, "lrn", shape, runs, ref, lrn_bytes(x.size), copy_gbs)


def bench_pool(args, table, copy_gbs, dnn):
    import cupy
    import torch
    from minialex.cuda import kernels
    F = torch.nn.functional
    kk, ss = POOL_KERNEL, POOL_STRIDE
    for name, (C, H, W) in POOL_SHAPES.items():
        N = args.batch
        shape = f"{name} N{N}"
        try:
            # a random permutation of 0 .. H*W-1 in each plane: exact in float32, no ties in a window
            x = cupy.argsort(cupy.random.random((N * C, H * W)), axis=1).astype(cupy.float32).reshape(N, C, H, W)
            tx = torch.from_dlpack(x)
            OH, OW = conv_output_size(H, kk, ss, 0), conv_output_size(W, kk, ss, 0)
            gy = cupy.random.standard_normal((N, C, OH, OW), dtype=cupy.float32)
            tgy = torch.from_dlpack(gy)
            xd = tx.double().requires_grad_()
            yd = F.max_pool2d(xd, kk, ss)
            ref = {"fwd": yd.detach(), "bwd": torch.autograd.grad(yd, xd, tgy.double())[0]}
        except Exception as exc:
            table.fail("maxpool", shape, "inputs and float64 references", describe(exc))
            continue

        def cudnn_fwd():
            xdsc, ydsc, desc = dnn.tensor(x.shape), dnn.tensor(gy.shape), dnn.pooling(kk, ss, 0)
            cy = cupy.empty_like(gy)
            dnn.pool_forward(desc, xdsc, x, ydsc, cy)
            return (lambda: dnn.pool_forward(desc, xdsc, x, ydsc, cy)), cy

        def cudnn_bwd():
            xdsc, ydsc, desc = dnn.tensor(x.shape), dnn.tensor(gy.shape), dnn.pooling(kk, ss, 0)
            cy, cdx = cupy.empty_like(gy), cupy.empty_like(x)
            dnn.pool_forward(desc, xdsc, x, ydsc, cy)
            dnn.pool_backward(desc, ydsc, cy, gy, xdsc, x, cdx)
            return (lambda: dnn.pool_backward(desc, ydsc, cy, gy, xdsc, x, cdx)), cdx

        def torch_fwd():
            return (lambda: F.max_pool2d(tx, kk, ss, return_indices=True)), F.max_pool2d(tx, kk, ss)

        def torch_bwd():
            txg = tx.clone().requires_grad_()
            ty = F.max_pool2d(txg, kk, ss)
            grad = lambda: torch.autograd.grad(ty, txg, tgy, retain_graph=True)[0]  # noqa: E731
            return grad, grad()

        def ours_fwd():
            return (lambda: kernels.max_pool2d_forward(x, kk, ss)), kernels.max_pool2d_forward(x, kk, ss)[0]

        def ours_bwd():
            _, arg = kernels.max_pool2d_forward(x, kk, ss)
            return ((lambda: kernels.max_pool2d_backward(gy, arg, x.shape, kk, ss)),
                    kernels.max_pool2d_backward(gy, arg, x.shape, kk, ss))

        runs = ([Run("fwd", "cuDNN", cudnn_fwd)] if dnn else []) + [
            Run("fwd", "torch max_pool2d (indices)", torch_fwd), Run("fwd", "minialex v1 (y and argmax)", ours_fwd)] + (
            [Run("bwd", "cuDNN", cudnn_bwd)] if dnn else []) + [
            Run("bwd", "torch autograd", torch_bwd), Run("bwd", "minialex v1 (gather)", ours_bwd)]
        time_memory_bound(args, table, f"maxpool {kk}/{ss}", shape, runs, ref,
                          pool_bytes(x.size, gy.size), copy_gbs)


def header_lines(args, argv, device, versions):
    return [
        f"# minialex CUDA kernels vs cuDNN on {device}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; {versions}; batch {args.batch}; "
        f"median of {args.iters} samples after {args.warmup} warm-up calls, CUDA events; LRN and "
        f"pooling samples of {args.calls} back-to-back calls. Command: python benchmarks/bench_gpu.py "
        + " ".join(argv),
        "",
        "Ceilings: the first rows, measured in this run. % peak: of the FP32 (TF32 rows: TF32) SGEMM "
        "ceiling for convolutions, of the copy bandwidth for LRN and pooling (bytes the implementation "
        "must move). x cuDNN: time / cuDNN FP32 time. err: max |out - ref| / max |ref| against a "
        f"float64 reference; FP32 rows must be under {STRICT_FP32:.0e} (TF32 lands near 3e-4). "
        "(host-bound): enqueueing took about as long as running; the kernel is faster than shown.",
    ]


def main(argv=None):
    args = parse_args(argv)
    try:
        import cupy
        import torch
    except ImportError as exc:
        print(f"bench_gpu.py: error: needs CuPy and PyTorch ({exc})", file=sys.stderr)
        return 2
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        n_gpus, why = 0, describe(exc)
    else:
        why = "CuPy sees 0 devices"
    if n_gpus == 0 or not torch.cuda.is_available():
        print(f"bench_gpu.py: error: no CUDA GPU ({why if n_gpus == 0 else 'torch.cuda.is_available() is False'})",
              file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    set_tf32(torch, matmul=False, conv=False)
    cupy.random.seed(0)
    torch.manual_seed(0)
    device = torch.cuda.get_device_name()
    versions = (f"CuPy {cupy.__version__}, PyTorch {torch.__version__}, cuDNN "
                f"{torch.backends.cudnn.version()} (through PyTorch)")
    argv = sys.argv[1:] if argv is None else list(argv)
    table = Table(args.out, header_lines(args, argv, device, versions))
    try:
        peaks = ceilings(args, table)
        if "conv" in args.parts:
            bench_convs(args, table, peaks)
        dnn = None
        if {"lrn", "pool"} & set(args.parts):
            try:
                dnn = CuDNN()
                print(f"cuDNN {dnn.version()} through ctypes: {', '.join(dnn.where)}", flush=True)
            except Exception as exc:
                table.fail("cuDNN LRN and pooling", "-", "ctypes into libcudnn", describe(exc))
        if "lrn" in args.parts:
            bench_lrn(args, table, peaks.copy_gbs, dnn)
        if "pool" in args.parts:
            bench_pool(args, table, peaks.copy_gbs, dnn)
    finally:
        table.close()
    print(f"wrote {args.out}")
    if table.failed:
        print(f"{len(table.failed)} FAILED: " + "; ".join(table.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
