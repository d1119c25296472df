"""benchmarks/gpu_check.sh and gpu_check.py without a GPU: the "no GPU" stop, and the kernel check
itself run on the CPU emulator, where it must pass on the real kernels and fail on broken ones.

(On a GPU the same check runs with CuPy: ``benchmarks/gpu_check.sh OUTDIR``, step 3.)
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def emulator(check, tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found: the kernel emulator needs it")
    return check.emulated.build_emulator(tmp_path_factory.mktemp("gpu_check_emu"))


FAKE_CUPY_DIR = ROOT / "tests" / "fake_cupy"


def no_gpu_env(tmp_path, fake_nvidia_smi=False):
    """PATH without nvidia-smi (or with one that fails) and a cupy that cannot be imported."""
    fake = tmp_path / "fake"
    (fake / "cupy").mkdir(parents=True)
    (fake / "cupy" / "__init__.py").write_text('raise ImportError("CuPy hidden by the test")\n')
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "nvidia-smi").exists()]
    if fake_nvidia_smi:
        smi = fake / "bin" / "nvidia-smi"
        smi.parent.mkdir()
        smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed: no driver' >&2\nexit 9\n")
        smi.chmod(0o755)
        dirs.insert(0, str(smi.parent))
    return dict(os.environ, PATH=os.pathsep.join(dirs), PYTHONPATH=str(fake), PYTHON=sys.executable,
                MINIALEX_FAKE_CUPY="0")


def stand_in_env(allow):
    """The test suite's CPU stand-in for CuPy on the path; MINIALEX_FAKE_CUPY=1 lets the steps use it."""
    return dict(os.environ, PYTHONPATH=str(FAKE_CUPY_DIR), PYTHON=sys.executable,
                MINIALEX_FAKE_CUPY="1" if allow else "0")


# ---- no GPU -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fake_nvidia_smi", [False, True], ids=["no-nvidia-smi", "failing-nvidia-smi"])
def test_gpu_check_sh_stops_at_no_gpu(tmp_path, fake_nvidia_smi):
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(SHELL_SCRIPT), str(out)], capture_output=True, text=True,
                            env=no_gpu_env(tmp_path, fake_nvidia_smi), timeout=120)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("gpu_check: no GPU: CuPy is not importable") and "CuPy hidden by the test" in first
    assert ("nvidia-smi at" in first) == fake_nvidia_smi
    assert "== step" not in result.stdout                      # stopped before step 1
    assert [p.name for p in out.iterdir()] == ["summary.txt"]
    assert "no GPU" in (out / "summary.txt").read_text()


def test_gpu_check_sh_takes_the_cupy_stand_in_for_no_gpu(tmp_path):
    """Even with MINIALEX_FAKE_CUPY=1: a check that passed on the CPU stand-in would claim a GPU."""
    result = subprocess.run(["bash", str(SHELL_SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                            env=stand_in_env(allow=True), timeout=120)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stdout.startswith("gpu_check: no GPU: the cupy found is minialex's CPU stand-in")


def test_gpu_check_sh_usage():
    result = subprocess.run(["bash", str(SHELL_SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "usage: benchmarks/gpu_check.sh OUTDIR"


@pytest.mark.parametrize("step", ["probe", "versions", "compile", "kernels"])
def test_gpu_check_py_steps_say_no_gpu(tmp_path, step):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), step],
                            capture_output=True, text=True, env=no_gpu_env(tmp_path), timeout=120)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "gpu_check: no GPU: CuPy is not importable" in result.stdout + result.stderr


# ---- the kernel check, on the emulator ------------------------------------------------------------
def test_every_entry_point_has_cases(check):
    entries = check.entry_points()
    assert len(entries) == 13 and {"conv2d_forward", "lrn_backward", "sgd_momentum_"} <= set(entries)
    assert "run" not in entries
    for shapes in ("small", "all"):
        assert {c.entry for c in check.all_cases(shapes)} == set(entries), shapes
    lines = []
    assert check.run_cases([], make_api=None, log=lines.append) == len(entries)
    assert sum("no check for this entry point" in ln for ln in lines) == len(entries)


def quick_cases(check):
    """Every small case but the convolutions, of which one geometry (stride 2, groups 2) in all versions."""
    conv_label = check.conv_label(check.emulated.CONV_CASES[1])
    return [c for c in check.all_cases("small") if not c.entry.startswith("conv2d") or c.label.startswith(conv_label)]


def test_kernel_check_passes_on_the_emulated_kernels(check, emulator):
    lines = []
    cases = quick_cases(check)
    assert check.run_cases(cases, lambda: check.GuardedAPI(np, emulator), log=lines.append) == 0, "\n".join(lines)
    assert sum(ln.startswith("ok   ") for ln in lines) == len(cases) > 50


class Broken:
    """The emulator, with one kernel broken after (or instead of) its launch."""

    def __init__(self, emulator, kernel, damage):
        self.emulator, self.kernel, self.damage = emulator, kernel, damage

    def __call__(self, launch):
        if launch is not None and launch.kernel == self.kernel:
            if self.damage == "skip":
                return
            self.emulator(launch)
            self.damage(launch.args)
        else:
            self.emulator(launch)


def _scale_y(args):      # dropout_apply(x, mask, y, ...): y off by 1e-3
    args[2][...] *= np.float32(1.001)


def _past_the_end(args):  # maxpool_backward_v1(gy, argmax, gx, ...): one float written after gx
    gx = args[2].reshape(-1)
    np.lib.stride_tricks.as_strided(gx, shape=(gx.size + 1,), strides=gx.strides)[-1] = 0.0


@pytest.mark.parametrize("kernel,damage,entry,message", [
    ("lrn_forward_v1", "skip", "lrn_forward", "elements unwritten"),
    ("sum_partials", "skip", "bias_act_backward", "elements unwritten"),
    ("dropout_apply", _scale_y, "dropout", "Mismatched elements"),
    ("maxpool_backward_v1", _past_the_end, "max_pool2d_backward", "write past the end of an array"),
], ids=["unwritten", "unwritten-partials", "wrong-values", "out-of-bounds"])
def test_kernel_check_fails_on_a_broken_kernel(check, emulator, kernel, damage, entry, message):
    cases = [c for c in check.all_cases("small") if c.entry == entry]
    lines = []
    failures = check.run_cases(cases, lambda: check.GuardedAPI(np, Broken(emulator, kernel, damage)),
                               log=lines.append, every_entry=False)
    assert failures >= 1 and any(ln.startswith(f"FAIL {entry}") for ln in lines), "\n".join(lines)
    assert message in "\n".join(lines)


def test_kernel_check_runs_its_gpu_path_on_the_cupy_stand_in():
    """Step 3 as on a GPU (CuPy arrays behind canaries, the public functions, cupy.asnumpy), with the
    strict stand-in as CuPy: every entry point, one conv geometry in all versions."""
    only = ["N2C4H9W7", "lrn", "max_pool", "bias_act", "dropout", "softmax", "sgd"]
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "kernels", "--shapes",
                             "small", "--only", *only], capture_output=True, text=True, env=stand_in_env(allow=True),
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "gpu_check: CPU stand-in, not a GPU: CuPy is tests/fake_cupy (MINIALEX_FAKE_CUPY=1)"
    assert lines[-1].endswith("over 13 entry points, 0 failure(s)")
    assert sum("[public]" in ln for ln in lines) == 13
    refused = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "kernels"],
                             capture_output=True, text=True, env=stand_in_env(allow=False), timeout=120)
    assert refused.returncode == 3 and "no GPU: the cupy found is minialex's CPU stand-in" in refused.stderr
