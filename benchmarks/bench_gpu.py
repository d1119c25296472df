"""GPU benchmark of minialex's CUDA kernels against cuDNN, on AlexNet's shapes (batch 128).

    python benchmarks/bench_gpu.py [--batch 128] [--iters 20] [--out benchmarks/RESULTS_gpu.md]

Needs a CUDA GPU, CuPy and PyTorch (for the cuDNN baselines; memory shared through DLPack).
In one run it measures:
  * ceilings: device-to-device copy bandwidth, and SGEMM throughput (FP32 and TF32) via torch.mm;
  * conv1..conv5 (Caffe's grouped AlexNet): every version of our forward, backward-data and
    backward-weight kernels, against cuDNN (torch, benchmark mode) with TF32 off (FP32 vs FP32),
    then cuDNN again with TF32 on (a different precision: stated in the table);
  * LRN (size 5, alpha 1e-4, beta 0.75, k 2) forward and backward on the outputs of conv1 and conv2,
    against cuDNN's own cudnnLRNCrossChannelForward/Backward (ctypes into libcudnn) and against
    torch.nn.functional.local_response_norm (a composite of several kernels, not cuDNN);
  * max-pool 3/2 forward and backward against cuDNN's pooling (ctypes) and PyTorch's native kernel.
Every kernel of ours (and the cuDNN calls) is validated against a float64 reference computed on the
GPU before it is timed; a row that fails validation is reported as such and not timed. Times are
medians over --iters runs after --warmup runs, measured with CUDA events on the null stream (which
CuPy and PyTorch both use). Each row gives the time, TFLOP/s or GB/s, the percentage of the
measured ceiling, and the ratio of its time to the cuDNN FP32 time (>1: slower than cuDNN).
"""
import argparse
import ctypes
import datetime
import glob
import os
import statistics
import sys

os.environ.setdefault("CUPY_TF32", "0")  # CuPy's matmul (version 1 of conv) in true FP32

ALEXNET_CONVS = {  # name: (C, H, W, O, k, stride, padding, groups), input 3x227x227
    "conv1": (3, 227, 227, 96, 11, 4, 0, 1),
    "conv2": (96, 27, 27, 256, 5, 1, 2, 2),
    "conv3": (256, 13, 13, 384, 3, 1, 1, 1),
    "conv4": (384, 13, 13, 384, 3, 1, 1, 2),
    "conv5": (384, 13, 13, 256, 3, 1, 1, 2),
}
LRN_SHAPES = {"lrn1 (96x55x55)": (96, 55, 55), "lrn2 (256x27x27)": (256, 27, 27)}
POOL_SHAPES = {"pool1 (96x55x55)": (96, 55, 55), "pool2 (256x27x27)": (256, 27, 27),
               "pool5 (256x13x13)": (256, 13, 13)}
LRN_ARGS = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
TOLERANCE = 1e-4  # max |ours - ref| / max |ref|, float32 against float64


# ---- timing and checking --------------------------------------------------------------------------
def median_ms(fn, warmup, iters):
    """Median time of fn() in ms, CUDA events around each call on the null stream."""
    import cupy
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def rel_error(out, ref):
    """max |out - ref| / max |ref| (both torch tensors or cupy arrays, compared in float64)."""
    import torch
    out, ref = torch.as_tensor(out).double(), torch.as_tensor(ref).double()
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


class Table:
    def __init__(self):
        self.rows, self.failed = [], []

    def add(self, op, shape, impl, ms, work, unit, peak, baseline_ms=None, err=None):
        rate = work / (ms * 1e-3) / 1e12 if unit == "TFLOP/s" else work / (ms * 1e-3) / 1e9
        pct = 100.0 * rate / peak if peak else float("nan")
        ratio = f"{ms / baseline_ms:.2f}" if baseline_ms else "-"
        err_s = f"{err:.1e}" if err is not None else "-"
        self.rows.append(f"| {op} | {shape} | {impl} | {ms:.3f} | {rate:.2f} {unit} | {pct:.0f}% | "
                         f"{ratio} | {err_s} |")
        print(self.rows[-1], flush=True)

    def fail(self, op, shape, impl, err):
        self.failed.append(f"{op} {shape} {impl}")
        self.rows.append(f"| {op} | {shape} | {impl} | FAILED validation (error {err:.1e}) | | | | |")
        print(self.rows[-1], flush=True)


# ---- cuDNN through ctypes (LRN and pooling are not reachable from PyTorch's cuDNN bindings) -------
class CuDNN:
    NCHW, FLOAT, LRN_CROSS_CHANNEL, POOL_MAX, NOT_PROPAGATE_NAN = 0, 0, 0, 0, 0

    def __init__(self):
        import torch
        dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
        dirs += [os.path.join(p, "nvidia", "cudnn", "lib") for p in sys.path if os.path.isdir(p)]
        names = []
        for d in dirs:
            for pattern in ("libcudnn.so*", "libcudnn_graph.so*", "libcudnn_ops.so*"):
                names += sorted(glob.glob(os.path.join(d, pattern)))
        self.libs = []
        for name in names:
            try:
                self.libs.append(ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL))
            except OSError:
                pass
        if not self.libs:
            raise RuntimeError(f"libcudnn not found in {dirs}")
        self.handle = ctypes.c_void_p()
        self.call("cudnnCreate", ctypes.byref(self.handle))
        self.one, self.zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def call(self, name, *args):
        for lib in self.libs:
            fn = getattr(lib, name, None)
            if fn is not None:
                status = fn(*args)
                if status != 0:
                    raise RuntimeError(f"{name} returned cuDNN status {status}")
                return
        raise RuntimeError(f"{name} not found in {len(self.libs)} cuDNN libraries")

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
def ceilings(args):
    import cupy
    import torch
    n = 1 << 28  # 1 GiB of float32
    a, b = cupy.empty(n, cupy.float32), cupy.empty(n, cupy.float32)
    copy_ms = median_ms(lambda: b.__setitem__(Ellipsis, a), args.warmup, args.iters)
    copy_gbs = 2 * 4 * n / (copy_ms * 1e-3) / 1e9
    del a, b
    m = 8192
    x, y = torch.randn(m, m, device="cuda"), torch.randn(m, m, device="cuda")
    peaks = {}
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ms = median_ms(lambda: torch.mm(x, y), args.warmup, args.iters)
        peaks["TF32" if tf32 else "FP32"] = 2 * m ** 3 / (ms * 1e-3) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return copy_gbs, peaks


def bench_convs(args, table, peaks):
    import cupy
    import torch
    from minialex.cuda import kernels as K
    aten = torch.ops.aten
    for name, (C, H, W, O, k, s, p, g) in ALEXNET_CONVS.items():
        if args.layers and name not in args.layers:
            continue
        N = args.batch
        x = cupy.random.standard_normal((N, C, H, W), dtype=cupy.float32)
        w = cupy.random.standard_normal((O, C // g, k, k), dtype=cupy.float32) * (1.0 / (C // g * k * k)) ** 0.5
        OH = (H + 2 * p - k) // s + 1
        dy = cupy.random.standard_normal((N, O, OH, OH), dtype=cupy.float32)
        tx, tw, tdy = (torch.from_dlpack(a) for a in (x, w, dy))
        flops = 2.0 * N * O * OH * OH * (C // g) * k * k
        shape = f"{name} N{N} {C}x{H}x{W} -> {O}x{OH}x{OH} k{k}/s{s}/p{p}/g{g}"
        ref = {"fwd": torch.nn.functional.conv2d(tx.double(), tw.double(), None, s, p, 1, g)}
        ref["bwd_data"], ref["bwd_weight"], _ = aten.convolution_backward(
            tdy.double(), tx.double(), tw.double(), None, [s, s], [p, p], [1, 1], False, [0, 0], g,
            [True, True, False])
        passes = {
            "fwd": lambda v: K.conv2d_forward(x, w, None, s, p, g, version=v),
            "bwd_data": lambda v: K.conv2d_backward_data(dy, w, x.shape, s, p, g, version=v),
            "bwd_weight": lambda v: K.conv2d_backward_weight(x, dy, w.shape, s, p, g, version=v, bias=False)[0],
        }
        cudnn = {
            "fwd": lambda: torch.nn.functional.conv2d(tx, tw, None, s, p, 1, g),
            "bwd_data": lambda: aten.convolution_backward(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False,
                                                          [0, 0], g, [True, False, False])[0],
            "bwd_weight": lambda: aten.convolution_backward(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False,
                                                            [0, 0], g, [False, True, False])[1],
        }
        for pas in passes:
            note = " (not needed for the input layer)" if pas == "bwd_data" and name == "conv1" else ""
            base = {}
            for tf32 in (False, True):
                torch.backends.cudnn.allow_tf32 = tf32
                label = "cuDNN TF32" if tf32 else "cuDNN FP32"
                err = rel_error(cudnn[pas](), ref[pas])
                base[tf32] = median_ms(cudnn[pas], args.warmup, args.iters)
                table.add(f"conv {pas}{note}", shape, label, base[tf32], flops, "TFLOP/s",
                          peaks["TF32" if tf32 else "FP32"], base[False], err)
            torch.backends.cudnn.allow_tf32 = False
            for v in (1, 2, 3):
                err = rel_error(passes[pas](v), ref[pas])
                if not err < TOLERANCE:
                    table.fail(f"conv {pas}", shape, f"minialex v{v}", err)
                    continue
                ms = median_ms(lambda: passes[pas](v), args.warmup, args.iters)
                table.add(f"conv {pas}{note}", shape, f"minialex v{v}", ms, flops, "TFLOP/s",
                          peaks["FP32"], base[False], err)
        del x, w, dy, tx, tw, tdy, ref
        cupy.get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()


def time_memory_bound(args, table, op, shape, runs, copy_gbs):
    """Validate then time each (pass, impl, fn, out, ref, bytes); the first of a pass (cuDNN) is the baseline."""
    base = {}
    for pas, impl, fn, out, ref, nbytes in runs:
        err = rel_error(out, ref)
        if not err < TOLERANCE:
            table.fail(f"{op} {pas}", shape, impl, err)
            continue
        ms = median_ms(fn, args.warmup, args.iters)
        base.setdefault(pas, ms)
        table.add(f"{op} {pas}", shape, impl, ms, nbytes, "GB/s", copy_gbs, base[pas], err)


def bench_lrn(args, table, copy_gbs, dnn):
    import cupy
    import torch
    from minialex.cuda import kernels as K
    F = torch.nn.functional
    size, alpha, beta, k = (LRN_ARGS[a] for a in ("size", "alpha", "beta", "k"))
    for name, (C, H, W) in LRN_SHAPES.items():
        N = args.batch
        shape4 = (N, C, H, W)
        x = cupy.maximum(cupy.random.standard_normal(shape4, dtype=cupy.float32) * 4, 0)  # after ReLU
        gy = cupy.random.standard_normal(shape4, dtype=cupy.float32)
        tx, tgy = torch.from_dlpack(x), torch.from_dlpack(gy)
        xd = tx.double().requires_grad_()
        yd = F.local_response_norm(xd, size, alpha, beta, k)
        (dxd,) = torch.autograd.grad(yd, xd, tgy.double())
        numel = x.size
        # ours
        y, scale = K.lrn_forward(x, size, alpha, beta, k)
        dx = K.lrn_backward(x, scale, gy, size, alpha, beta)
        # cuDNN
        td, desc = dnn.tensor(shape4), dnn.lrn(size, alpha, beta, k)
        cy, cdx = cupy.empty_like(x), cupy.empty_like(x)
        dnn.lrn_forward(desc, td, x, cy)
        dnn.lrn_backward(desc, td, cy, gy, x, cdx)
        # torch
        txg = tx.clone().requires_grad_()
        ty = F.local_response_norm(txg, size, alpha, beta, k)
        runs = [
            ("fwd", "cuDNN", lambda: dnn.lrn_forward(desc, td, x, cy), cy, yd, 2),
            ("fwd", "torch local_response_norm", lambda: F.local_response_norm(tx, size, alpha, beta, k), ty, yd, 2),
            ("fwd", "minialex v1 (y and scale)", lambda: K.lrn_forward(x, size, alpha, beta, k), y, yd, 3),
            ("bwd", "cuDNN", lambda: dnn.lrn_backward(desc, td, cy, gy, x, cdx), cdx, dxd, 4),
            ("bwd", "torch autograd", lambda: torch.autograd.grad(ty, txg, tgy, retain_graph=True),
             torch.autograd.grad(ty, txg, tgy, retain_graph=True)[0], dxd, 4),
            ("bwd", "minialex v1", lambda: K.lrn_backward(x, scale, gy, size, alpha, beta), dx, dxd, 4),
        ]
        runs = [(pas, impl, fn, out, ref, streams * 4 * numel) for pas, impl, fn, out, ref, streams in runs]
        time_memory_bound(args, table, "lrn", f"{name} N{N}", runs, copy_gbs)


def bench_pool(args, table, copy_gbs, dnn):
    import cupy
    import torch
    from minialex.cuda import kernels as K
    F = torch.nn.functional
    for name, (C, H, W) in POOL_SHAPES.items():
        N = args.batch
        # a random permutation of 0 .. H*W-1 in each plane: exact in float32, no ties in a window
        x = cupy.argsort(cupy.random.random((N * C, H * W)), axis=1).astype(cupy.float32).reshape(N, C, H, W)
        tx = torch.from_dlpack(x)
        OH = (H - 3) // 2 + 1
        gy = cupy.random.standard_normal((N, C, OH, OH), dtype=cupy.float32)
        tgy = torch.from_dlpack(gy)
        xd = tx.double().requires_grad_()
        yd = F.max_pool2d(xd, 3, 2)
        (dxd,) = torch.autograd.grad(yd, xd, tgy.double())
        y, arg = K.max_pool2d_forward(x, 3, 2)
        dx = K.max_pool2d_backward(gy, arg, x.shape, 3, 2)
        xdsc, ydsc, desc = dnn.tensor(x.shape), dnn.tensor(y.shape), dnn.pooling(3, 2, 0)
        cy, cdx = cupy.empty_like(y), cupy.empty_like(x)
        dnn.pool_forward(desc, xdsc, x, ydsc, cy)
        dnn.pool_backward(desc, ydsc, cy, gy, xdsc, x, cdx)
        txg = tx.clone().requires_grad_()
        ty = F.max_pool2d(txg, 3, 2)
        fwd_bytes = 4 * (x.size + y.size)           # read x, write y (cuDNN, torch without indices)
        bwd_bytes = 4 * (x.size + 2 * y.size)       # read gy and the argmax / y, write dx
        runs = [
            ("fwd", "cuDNN", lambda: dnn.pool_forward(desc, xdsc, x, ydsc, cy), cy, yd, fwd_bytes),
            ("fwd", "torch max_pool2d (indices)", lambda: F.max_pool2d(txg, 3, 2), ty, yd, fwd_bytes + 8 * y.size),
            ("fwd", "minialex v1 (y and argmax)", lambda: K.max_pool2d_forward(x, 3, 2), y, yd, fwd_bytes + 4 * y.size),
            ("bwd", "cuDNN", lambda: dnn.pool_backward(desc, ydsc, cy, gy, xdsc, x, cdx), cdx, dxd, bwd_bytes + 4 * x.size),
            ("bwd", "torch autograd", lambda: torch.autograd.grad(ty, txg, tgy, retain_graph=True),
             torch.autograd.grad(ty, txg, tgy, retain_graph=True)[0], dxd, bwd_bytes + 4 * y.size),
            ("bwd", "minialex v1 (gather)", lambda: K.max_pool2d_backward(gy, arg, x.shape, 3, 2), dx, dxd, bwd_bytes),
        ]
        time_memory_bound(args, table, "maxpool 3/2", f"{name} N{N}", runs, copy_gbs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--layers", nargs="*", default=None, help="conv layers to run (default all)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS_gpu.md"))
    args = parser.parse_args(argv)

    import cupy
    import torch
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cupy.random.seed(0)
    torch.manual_seed(0)
    device = torch.cuda.get_device_name()
    copy_gbs, peaks = ceilings(args)
    print(f"{device}: copy {copy_gbs:.0f} GB/s, SGEMM FP32 {peaks['FP32']:.1f} TFLOP/s, "
          f"TF32 {peaks['TF32']:.1f} TFLOP/s", flush=True)
    table = Table()
    bench_convs(args, table, peaks)
    dnn = CuDNN()
    bench_lrn(args, table, copy_gbs, dnn)
    bench_pool(args, table, copy_gbs, dnn)

    header = [
        f"# minialex CUDA kernels vs cuDNN on {device}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; CuPy {cupy.__version__}, "
        f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, batch {args.batch}, "
        f"median of {args.iters} runs after {args.warmup} warm-ups, CUDA events.",
        "",
        f"Ceilings measured in this run: copy {copy_gbs:.0f} GB/s (read + write), SGEMM "
        f"{peaks['FP32']:.1f} TFLOP/s FP32 and {peaks['TF32']:.1f} TFLOP/s TF32 (torch.mm 8192^3).",
        "% peak: of the FP32 (TF32 rows: TF32) SGEMM ceiling for convolutions, of the copy bandwidth "
        "for LRN and pooling (bytes the implementation must move). x cuDNN: time / cuDNN FP32 time. "
        "err: max |out - ref| / max |ref| against a float64 reference.",
        "",
        "| op | shape | implementation | ms | rate | % peak | x cuDNN | err |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(header + table.rows) + "\n")
    print(f"wrote {args.out}")
    if table.failed:
        print("FAILED validation: " + "; ".join(table.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
