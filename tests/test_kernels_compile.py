"""Every kernels/*.cu compiles with nvcc for sm_80 and sm_90, without warnings and without spills.

No GPU needed: `nvcc -cubin` runs only the device compilation (what CuPy/NVRTC does too), one nvcc
call per architecture over all the files, the two calls in parallel. ptxas's -v report gives the
registers, stack frame and spill bytes of each kernel; they are printed (pytest -s) and the table
in kernels/README.md was copied from one run. Skipped only when nvcc is missing.
"""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

try:
    from minialex.cuda import sources
except ImportError:  # run as `pytest` from a source checkout without the package installed
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from minialex.cuda import sources

KERNEL_DIR = sources.kernel_dir()
SOURCES = sorted(KERNEL_DIR.glob("*.cu"))
ARCHS = ("sm_80", "sm_90")
KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(')


def parse_ptxas(log):
    """{(kernel, arch): {"registers", "stack", "spill_stores", "spill_loads", "smem"}} from -Xptxas -v."""
    stats, current = {}, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)' for '(sm_\d+)'", line)
        if m:
            current = stats.setdefault((m.group(1), m.group(2)), {"smem": 0})
            continue
        if current is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                           spill_loads=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            current["registers"] = int(m.group(1))
            m = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(m.group(1)) if m else 0
    return stats


@pytest.fixture(scope="module")
def ptxas_reports(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: the kernel compile test needs the CUDA toolkit")
    procs = {}
    for arch in ARCHS:
        out = tmp_path_factory.mktemp(arch)
        cmd = [nvcc, "-cubin", f"-arch={arch}", "-std=c++17", "-Xptxas", "-v", "-Werror",
               "all-warnings", "-odir", str(out), *map(str, SOURCES)]
        procs[arch] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return {arch: (p.communicate()[0], p.returncode) for arch, p in procs.items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_compiles_without_warnings(ptxas_reports, arch):
    log, rc = ptxas_reports[arch]
    assert rc == 0, f"nvcc -arch={arch} failed:\n{log}"
    warnings = [ln for ln in log.splitlines() if "warning" in ln.lower()]
    assert not warnings, "\n".join(warnings)


@pytest.mark.parametrize("arch", ARCHS)
def test_no_spills_and_every_kernel_reported(ptxas_reports, arch):
    log, rc = ptxas_reports[arch]
    assert rc == 0, log
    stats = {k: v for (k, a), v in parse_ptxas(log).items() if a == arch}
    expected = {name for src in SOURCES for name in KERNEL_RE.findall(src.read_text())}
    assert expected == set(stats), f"ptxas reported {sorted(stats)}, sources define {sorted(expected)}"
    print(f"\n| kernel ({arch}) | registers | stack bytes | spill stores | spill loads | static smem |")
    print("|---|---|---|---|---|---|")
    for name in sorted(stats):
        s = stats[name]
        print(f"| {name} | {s['registers']} | {s['stack']} | {s['spill_stores']} | "
              f"{s['spill_loads']} | {s['smem']} |")
    spilling = {n: s for n, s in stats.items() if s["spill_stores"] or s["spill_loads"] or s["stack"]}
    assert not spilling, f"kernels using local memory on {arch}: {spilling}"


def test_sources_are_nvrtc_friendly():
    """CuPy compiles with NVRTC, which has no system headers: only local "..." includes."""
    for src in SOURCES + sorted(KERNEL_DIR.glob("*.cuh")):
        for inc in re.findall(r"#\s*include\s*([<\"][^>\"]+[>\"])", src.read_text()):
            assert inc.startswith('"'), f"{src.name} includes {inc}: NVRTC has no system headers"


def test_inlined_sources_compile(tmp_path):
    """The text CuPy compiles (minialex.cuda.sources.read_source: common.cuh inlined) compiles too."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    paths = []
    for src in SOURCES:
        paths.append(tmp_path / src.name)
        paths[-1].write_text(sources.read_source(src.name))
    cmd = [nvcc, "-ptx", "-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", "-odir",
           str(tmp_path), *map(str, paths)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), proc.stderr


def test_every_kernel_is_documented():
    """kernels/README.md lists every kernel (the versions table)."""
    readme = (KERNEL_DIR / "README.md").read_text()
    for src in SOURCES:
        for name in KERNEL_RE.findall(src.read_text()):
            assert f"`{name}`" in readme, f"{name} ({src.name}) is missing from kernels/README.md"
