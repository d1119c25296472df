"""Execute every teaching notebook in notebooks/ headless, so that none of them rots.

Each notebook is read with nbformat and run top to bottom by nbclient in a fresh Jupyter kernel
("python3", started with this interpreter), with the working directory set to notebooks/ and
PYTHONPATH set to this checkout, so the kernel imports the minialex under test. The notebook is
executed in memory: the committed .ipynb files (with their outputs) are never rewritten.

A cell that raises fails the test with that cell's source and traceback. Limits: CELL_TIMEOUT seconds
per cell, NOTEBOOK_TIMEOUT per notebook. matplotlib renders headless: MPLBACKEND=Agg in the kernel's
environment, and the notebooks' ``%matplotlib inline`` is Agg-based too (PNG outputs, no display).
BLAS runs single-threaded unless the environment says otherwise, which keeps the run time
predictable on small shared machines (the whole set takes about 100 s on 2 cores).

Skipped, saying which, when nbclient, nbformat or ipykernel is not installed:
``pip install "minialex[notebooks]"`` (nbclient, nbformat, ipykernel, matplotlib).

Executing a notebook does not compare its outputs with the committed ones, so a notebook that prints
``inspect.getsource(...)`` could go on showing code that no longer exists. A second test, which needs
no kernel, reads each such committed output and compares it with the live source (see
``test_saved_source_listings_match_the_live_source``).
"""
import asyncio
import inspect
import json
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 180        # seconds for any one cell
NOTEBOOK_TIMEOUT = 360    # seconds for a whole notebook, kernel start included
ANSI = re.compile(r"\x1b\[[0-9;]*m")
GETSOURCE = re.compile(r"inspect\.getsource\(([\w.\[\]\"']+)\)")     # inspect.getsource(F.max_pool2d)


def _missing_packages():
    missing = []
    for module in ("nbclient", "nbformat", "ipykernel"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


def _kernel_env():
    env = dict(os.environ)
    fake_cupy = str(REPO / "tests" / "fake_cupy")   # the notebooks show what a user sees: no CuPy stand-in
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                       if p and p != fake_cupy])
    env.pop("MINIALEX_FAKE_CUPY", None)
    env["MPLBACKEND"] = "Agg"
    env.pop("DISPLAY", None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def _client(nb):
    """An nbclient NotebookClient for ``nb`` whose "python3" kernel runs with this interpreter
    (a python3 kernelspec installed elsewhere could point at another Python without minialex)."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    km = AsyncKernelManager(kernel_name="python3")
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return NotebookClient(nb, km=km, kernel_name="python3", timeout=CELL_TIMEOUT, allow_errors=False,
                          resources={"metadata": {"path": str(NOTEBOOK_DIR)}})


def test_the_nine_notebooks_are_there_and_listed():
    assert len(NOTEBOOKS) == 9, [p.name for p in NOTEBOOKS]
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"notebooks/README.md does not link {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_shows_its_outputs(path):
    """The committed file was executed: every code cell ran, none failed, and its plots are there."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name}: some cells were never executed"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"], f"{path.name} was committed with an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no plot in its outputs"
    assert path.stat().st_size < 1_500_000, f"{path.name} is {path.stat().st_size:,} bytes (limit 1.5 MB)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    missing = _missing_packages()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install \"minialex[notebooks]\" to run the notebooks")
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)          # an in-memory copy: the file is not touched
    client = _client(nb)
    try:
        run = client.async_execute(env=_kernel_env(), cleanup_kc=True)     # cleanup_kc: shut the kernel down after
        asyncio.run(asyncio.wait_for(run, NOTEBOOK_TIMEOUT))
    except CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised\n{ANSI.sub('', str(err))}", pytrace=False)
    except CellTimeoutError as err:
        pytest.fail(f"{path.name}: a cell ran longer than {CELL_TIMEOUT} s\n{ANSI.sub('', str(err))}", pytrace=False)
    except asyncio.TimeoutError:
        pytest.fail(f"{path.name}: the notebook ran longer than {NOTEBOOK_TIMEOUT} s", pytrace=False)


def _listings(nb):
    """(cell number, expression, the cell's code, its saved stdout, whether it prints the whole source) for
    every ``inspect.getsource(expression)`` in a code cell."""
    for number, cell in enumerate(nb["cells"]):
        code = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        saved = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout")
        for expression in GETSOURCE.findall(code):
            yield number, expression, code, saved, f"print(inspect.getsource({expression}))" in code


def _notebook_namespace(nb):
    """The names the notebook's import statements bind, imported here (from this checkout's minialex)."""
    namespace = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith(("import ", "from ")):
                    exec(line, namespace)
    return namespace


def _live_object(expression, code, namespace):
    """Evaluate ``expression`` after the cell's own simple assignments before it (``f = sys.modules[...]``)."""
    local = dict(namespace)
    for line in code.splitlines():
        if "getsource" in line:
            break
        if re.match(r"\w+ = ", line):
            exec(line, local)
    return eval(expression, local)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_saved_source_listings_match_the_live_source(path):
    """A cell that prints ``inspect.getsource(f)`` must show f's code as it is now: the whole source where it
    prints it all, else (a slice, as notebook 02 prints the im2col part of ``_forward``) the live source from
    the first line it shows to the end. Re-execute the notebook when this fails."""
    nb = json.loads(path.read_text())
    namespace = None
    for number, expression, code, saved, whole in _listings(nb):
        namespace = namespace or _notebook_namespace(nb)
        live = inspect.getsource(_live_object(expression, code, namespace))
        where = f"{path.name}, cell {number}: the saved output of inspect.getsource({expression})"
        if whole:
            assert live in saved, f"{where} is not the live source; re-execute the notebook"
            continue
        live_lines, saved_lines = live.splitlines(), saved.splitlines()
        first = next((i for i, line in enumerate(saved_lines) if line.strip() and line in live_lines), None)
        assert first is not None, f"{where} shows no line of the live source; re-execute the notebook"
        shown = "\n".join(saved_lines[first:])
        rest = "\n".join(live_lines[live_lines.index(saved_lines[first]):])
        assert shown.startswith(rest), f"{where} differs from the live source; re-execute the notebook"
