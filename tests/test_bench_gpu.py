"""benchmarks/bench_gpu.py without a GPU: what it counts, how it times and writes, its command line.

The measuring needs CuPy, PyTorch and a GPU (benchmarks/gpu_check.sh runs it there); everything
that decides what a row says is plain Python and is checked here.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def no_cupy_env(tmp_path):
    """An environment in which `import cupy` fails, GPU or not (a cupy package that raises)."""
    fake = tmp_path / "no_cupy" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("CuPy hidden by the test")\n')
    return dict(os.environ, PYTHONPATH=str(fake.parent))


def run_script(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


# ---- counting ---------------------------------------------------------------------------------------
def test_conv_flops_are_alexnets_multiply_adds(bench):
    """Batch 1, Caffe's grouped AlexNet: 105.4M, 223.9M, 149.5M, 112.1M, 74.8M multiply-adds."""
    macs = {"conv1": 96 * 55 * 55 * 3 * 11 * 11, "conv2": 256 * 27 * 27 * 48 * 5 * 5,
            "conv3": 384 * 13 * 13 * 256 * 3 * 3, "conv4": 384 * 13 * 13 * 192 * 3 * 3,
            "conv5": 256 * 13 * 13 * 192 * 3 * 3}
    assert macs["conv1"] == 105_415_200 and sum(macs.values()) == 665_784_864
    for name, geometry in bench.ALEXNET_CONVS.items():
        assert bench.conv_flops(1, *geometry) == 2 * macs[name], name
        assert bench.conv_flops(128, *geometry) == 256 * macs[name], name
    assert [bench.conv_output_size(H, k, s, p) for (_, H, _, _, k, s, p, _) in bench.ALEXNET_CONVS.values()] \
        == [55, 27, 13, 13, 13]


def test_bytes_moved(bench):
    lrn = bench.lrn_bytes(10)
    assert lrn[("fwd", "cuDNN")] == 80 and lrn[("fwd", "minialex v1 (y and scale)")] == 120
    assert lrn[("bwd", "minialex v1")] == 160
    x, y = 96 * 55 * 55, 96 * 27 * 27                                # pool1, one image
    pool = bench.pool_bytes(x, y)
    assert pool[("fwd", "cuDNN")] == 4 * (x + y)
    assert pool[("fwd", "minialex v1 (y and argmax)")] == 4 * (x + 2 * y)
    assert pool[("fwd", "torch max_pool2d (indices)")] == 4 * (x + y) + 8 * y
    assert pool[("bwd", "minialex v1 (gather)")] == 4 * (x + 2 * y)


def test_backward_data_of_a_strided_conv_gets_fewer_samples(bench):
    """Versions 2 and 3 gather over every kernel offset: stride^2 (conv1: 16x) the useful work."""
    assert bench.conv_timing(5, 20, "bwd_data", 2, 4) == (1, 3)
    assert bench.conv_timing(5, 64, "bwd_data", 3, 4) == (1, 4)
    assert bench.conv_timing(5, 20, "bwd_data", 2, 2) == (2, 5)
    for pas, version, stride in [("bwd_data", 1, 4), ("fwd", 2, 4), ("bwd_weight", 3, 4), ("bwd_data", 3, 1)]:
        assert bench.conv_timing(5, 20, pas, version, stride) == (5, 20), (pas, version, stride)
    assert bench.conv_timing(0, 2, "bwd_data", 3, 4) == (0, 2)      # never more than asked for


# ---- the table ----------------------------------------------------------------------------------------
def test_row_rates_peaks_and_ratios(bench):
    row = bench.format_row("conv fwd", "s", "minialex v2", 2.0, 4e9, "TFLOP/s", peak=4.0, baseline_ms=1.0,
                           err=1.234e-7, note=" (host-bound)")
    assert row == "| conv fwd | s | minialex v2 | 2.0000 (host-bound) | 2.00 TFLOP/s | 50% | 2.00 | 1.2e-07 |"
    row = bench.format_row("lrn fwd", "s", "cuDNN", 0.5, 1e9, "GB/s")
    assert row == "| lrn fwd | s | cuDNN | 0.5000 | 2000.00 GB/s | - | - | - |"


def test_table_is_written_row_by_row(bench, tmp_path, capsys):
    path = tmp_path / "results.md"
    table = bench.Table(str(path), ["# title", "", "run details"])
    table.add("ceiling: copy", "1 GiB", "cupy", 1.0, 2e9, "GB/s")
    text = path.read_text()                                 # before close: already on disk
    assert text.startswith("# title\n") and "| op | shape |" in text and "| 2000.00 GB/s |" in text
    table.fail("conv fwd", "conv1", "minialex v3", "RuntimeError: bad\nlaunch | here")
    assert "| FAILED: RuntimeError: bad launch / here | | | | |" in path.read_text()
    table.add("conv fwd", "conv1", "cuDNN FP32", 1.0, 1e9, "TFLOP/s", err=3e-4, problem="not FP32")
    last = path.read_text().splitlines()[-1]
    assert last.endswith("| 3.0e-04 FAILED: not FP32 |") and last.count("|") == 9
    table.close()
    assert len(table.failed) == 2 and "FAILED: RuntimeError: bad launch" in capsys.readouterr().out


# ---- timing -------------------------------------------------------------------------------------------
class VirtualGPU:
    """A clock for median_time: each call of work() costs gpu_ms of 'GPU' time and no host time."""

    def __init__(self, gpu_ms):
        self.gpu_ms, self.now, self.calls = gpu_ms, 0.0, 0

    def work(self):
        self.calls += 1
        self.now += self.gpu_ms

    def start(self):
        return self.now

    def stop_ms(self, start):
        return self.now - start

    def synchronize(self):
        pass


def test_median_time_divides_back_to_back_calls(bench):
    gpu = VirtualGPU(gpu_ms=5.0)
    t = bench.median_time(gpu.work, warmup=2, iters=3, calls=4, clock=gpu)
    assert gpu.calls == 2 + 3 * 4
    assert t.ms == pytest.approx(5.0) and not t.host_bound and t.note == ""


def test_median_time_flags_host_bound_calls(bench):
    """When enqueueing takes as long as the GPU's time, the figure is the host's, not the kernel's."""
    import time

    class HostClock(VirtualGPU):
        def start(self):
            return time.perf_counter()

        def stop_ms(self, start):
            return (time.perf_counter() - start) * 1e3   # the GPU finishes as soon as the host does

    clock = HostClock(0.0)
    t = bench.median_time(lambda: time.sleep(0.002), warmup=0, iters=3, calls=2, clock=clock)
    assert t.ms >= 2.0 and t.host_bound and t.note == " (host-bound)"


# ---- finding cuDNN --------------------------------------------------------------------------------------
def test_mapped_libraries_reads_the_process_maps(bench, tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f10 r--p 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f10-7f20 r-xp 00000000 08:01 2 /venv/site-packages/nvidia/cu13/lib/libcudnn.so.9\n"
        "7f20-7f30 r--p 00001000 08:01 2 /venv/site-packages/nvidia/cu13/lib/libcudnn.so.9\n"
        "7f30-7f40 rw-p 00000000 00:00 0 \n"
        "7f40-7f50 r-xp 00000000 08:01 3 /venv/site-packages/nvidia/cu13/lib/libcudnn_ops.so.9\n"
        "7f50-7f60 r-xp 00000000 08:01 4 /opt/my libs/libcudnn_graph.so.9\n"
        "7ff0-7ff1 r-xp 00000000 00:00 0 [vdso]\n")
    assert bench.mapped_libraries("libcudnn", str(maps)) == [
        "/venv/site-packages/nvidia/cu13/lib/libcudnn.so.9",
        "/venv/site-packages/nvidia/cu13/lib/libcudnn_ops.so.9",
        "/opt/my libs/libcudnn_graph.so.9"]
    assert bench.mapped_libraries("libcudnn", str(tmp_path / "missing")) == []


# ---- command line -------------------------------------------------------------------------------------
def test_help_works_without_cupy(tmp_path):
    result = run_script("--help", env=no_cupy_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for flag in ("--batch", "--iters", "--warmup", "--calls", "--parts", "--layers", "--out"):
        assert flag in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["--iters", "0"], "--iters: must be >= 1, got 0"),
    (["--batch", "x"], "--batch: expected an integer, got 'x'"),
    (["--layers", "conv9"], "conv9"),
    (["--parts", "fc"], "fc"),
    (["--out", "/no/such/dir/t.md"], "/no/such/dir does not exist"),
    ([], "needs CuPy and PyTorch"),
])
def test_errors_are_one_line(tmp_path, args, needle):
    result = run_script(*args, env=no_cupy_env(tmp_path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("bench_gpu.py: error: ") and needle in lines[0], lines[0]


def test_set_tf32_uses_the_api_the_installed_torch_has(bench):
    from types import SimpleNamespace as NS
    new = NS(backends=NS(cuda=NS(matmul=NS(fp32_precision="none")), cudnn=NS(conv=NS(fp32_precision="none"))))
    bench.set_tf32(new, matmul=True, conv=False)
    assert (new.backends.cuda.matmul.fp32_precision, new.backends.cudnn.conv.fp32_precision) == ("tf32", "ieee")
    bench.set_tf32(new, conv=True)
    assert (new.backends.cuda.matmul.fp32_precision, new.backends.cudnn.conv.fp32_precision) == ("tf32", "tf32")
    old = NS(backends=NS(cuda=NS(matmul=NS(allow_tf32=True)), cudnn=NS(allow_tf32=True)))  # PyTorch < 2.9
    bench.set_tf32(old, matmul=False, conv=False)
    assert (old.backends.cuda.matmul.allow_tf32, old.backends.cudnn.allow_tf32) == (False, False)
