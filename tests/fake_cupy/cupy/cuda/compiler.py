"""``cupy.cuda.compiler``: the exception a failed compile raises."""
from .._emulated import CompileException  # noqa: F401
