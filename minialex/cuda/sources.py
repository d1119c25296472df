"""Find and read the CUDA sources in kernels/.

Installed, the .cu files are package data of ``minialex.kernels``; in a source checkout they sit
in ``<repo>/kernels``, next to the ``minialex`` package.
"""
import pathlib
import re

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.M)


def kernel_dir():
    """The directory holding conv2d.cu, lrn.cu, ... as a pathlib.Path."""
    checkout = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    if (checkout / "common.cuh").is_file():
        return checkout
    try:
        from importlib.resources import files
        installed = pathlib.Path(str(files("minialex.kernels")))
    except (ImportError, ModuleNotFoundError, TypeError) as exc:
        raise FileNotFoundError(f"minialex's CUDA sources: neither {checkout} nor the "
                                f"minialex.kernels package data was found") from exc
    if not (installed / "common.cuh").is_file():
        raise FileNotFoundError(f"minialex's CUDA sources are missing from {installed}")
    return installed


def read_source(name):
    """The text of kernels/<name> with its local #include "..." files inlined (once each).

    Inlining makes the code self-contained for NVRTC (no include path) and makes CuPy's
    compile cache, keyed by the source text, notice a change in common.cuh.
    """
    root = kernel_dir()
    seen = set()

    def expand(fname):
        if fname in seen:
            return ""
        seen.add(fname)
        text = (root / fname).read_text().replace("#pragma once", "")
        return _INCLUDE.sub(lambda m: expand(m.group(1)), text)

    return expand(name)
