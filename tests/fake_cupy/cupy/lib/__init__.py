"""``cupy.lib``: only ``stride_tricks`` (minialex's im2col views)."""
from . import stride_tricks  # noqa: F401
