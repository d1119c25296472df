"""The pictures a run leaves behind.

* ``conv1_filters.png``: the conv1 kernels as a grid of little images, the paper's Figure 3, and beside
  them what training changed: each kernel minus its initial value. On the digits the first picture is
  mostly the starting noise (after the default run the kernels still correlate ~0.95 with their
  initialisation), so the second is where learning shows. The caption (a PNG text chunk, and the
  trainer's last line) says how far the kernels moved: ``filter_change``. Written with a 20-line PNG
  encoder (zlib), so it needs neither matplotlib nor Pillow.
* ``curves.png``: train loss and test error per epoch, with matplotlib when it is installed
  (``pip install minialex[plot]``); without it the plot is skipped and the caller says so.
"""
import struct
import zlib

import numpy as np

from .metrics import views_name


def write_png(path, image, text=None):
    """Write ``image`` uint8, (H, W) grey or (H, W, 3) RGB, as a PNG file (8 bits, no filtering); ``text``
    {keyword: Latin-1 string} goes into tEXt chunks (e.g. "Description", which image viewers show)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        color_type, channels = 0, 1
    elif image.ndim == 3 and image.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"write_png: expected (H, W) or (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    rows = image.reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)     # filter type 0 before every row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    texts = b"".join(chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))
                     for key, value in (text or {}).items())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + texts + chunk(b"IDAT", zlib.compress(raw, 6))
                + chunk(b"IEND", b""))


def filter_grid(weight, scale=None, pad=1, columns=None, signed=False):
    """conv1 weights (O, C, kH, kW) -> one uint8 image of all O kernels, like the paper's Figure 3.

    Each kernel is min-max scaled to 0..255 on its own (so its pattern, not its size, shows); with
    ``signed=True`` it is scaled by its largest magnitude instead, so that 0 is mid-grey (128), positive
    values lighter and negative darker (for a change, whose sign matters);
    enlarged ``scale`` times (nearest neighbour) and placed in a grid (16 columns, 8 for fewer than 64
    kernels) with ``pad`` pixels of white between cells. C == 3 gives an RGB image (H, W, 3); any
    other C shows channel 0 in grey (H, W).
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected weights (O, C, kH, kW), got shape {w.shape}")
    O, C, kH, kW = w.shape
    w = w if C == 3 else w[:, :1]                                  # (O, 3 or 1, kH, kW)
    if signed:
        largest = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
        w = 0.5 + 0.5 * w / np.where(largest > 0, largest, 1.0)             # each kernel in [0, 1], 0 at 0.5
    else:
        lo = w.min(axis=(1, 2, 3), keepdims=True)
        hi = w.max(axis=(1, 2, 3), keepdims=True)
        w = (w - lo) / np.where(hi > lo, hi - lo, 1.0)             # each kernel in [0, 1]
    scale = scale or max(1, 48 // max(kH, kW))
    w = w.repeat(scale, axis=2).repeat(scale, axis=3)              # (O, c, kH*s, kW*s)
    columns = columns or (16 if O >= 64 else 8)      # 96 kernels: 6 rows of 16, 3 per tower as in Fig. 3
    rows = int(np.ceil(O / columns))
    cell_h, cell_w = kH * scale + pad, kW * scale + pad
    grid = np.ones((w.shape[1], rows * cell_h + pad, columns * cell_w + pad))   # (c, H, W), white
    for i in range(O):
        r, c = divmod(i, columns)
        grid[:, pad + r * cell_h:pad + r * cell_h + kH * scale, pad + c * cell_w:pad + c * cell_w + kW * scale] = w[i]
    image = np.round(grid * 255).astype(np.uint8)
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)       # (H, W) or (H, W, 3)


def filter_change(weight, initial):
    """How far the kernels moved from ``initial``: {"relative_change": ||W - W0|| / ||W0||,
    "correlation": Pearson correlation of W's and W0's entries}, in float64."""
    w, w0 = np.asarray(weight, dtype=np.float64).ravel(), np.asarray(initial, dtype=np.float64).ravel()
    return {"relative_change": float(np.linalg.norm(w - w0) / np.linalg.norm(w0)),
            "correlation": float(np.corrcoef(w, w0)[0, 1])}


def describe_change(change):
    return (f"conv1 kernels moved {100 * change['relative_change']:.0f}% from their initial values "
            f"(||W - W0|| / ||W0||); correlation with the initialisation {change['correlation']:.3f}")


def save_filter_grid(path, weight, initial=None):
    """The kernels' grid; with ``initial`` (the weights before training), the grid of the change
    W - W0 (``signed``) to its right, 8 white pixels apart, and a caption with ``filter_change``.
    Returns the change (None without ``initial``)."""
    grid = filter_grid(weight)
    if initial is None:
        write_png(path, grid)
        return None
    change = filter_change(weight, initial)
    moved = filter_grid(np.asarray(weight, dtype=np.float64) - np.asarray(initial, dtype=np.float64), signed=True)
    gap = np.full((grid.shape[0], 8) + grid.shape[2:], 255, dtype=np.uint8)
    caption = ("Left: the conv1 kernels, each min-max scaled. Right: each kernel's change from its "
               "initial value (grey 0, lighter positive, darker negative). " + describe_change(change))
    write_png(path, np.concatenate([grid, gap, moved], axis=1), text={"Description": caption})
    return change


def save_curves(path, history):
    """Plot train loss and test errors per epoch into ``path``, and the final multi-view test's top-1 error
    as a star at its epoch. Returns False (and draws nothing) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train loss")
    if any(r.get("test_loss") is not None for r in history):
        ax_loss.plot(epochs, [r.get("test_loss") for r in history], "s-", label="test loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    for key, label in (("test_top1_error", "test top-1 error (single view)"),
                       ("test_top5_error", "test top-5 error (single view)")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax_err.plot(epochs, [100 * v if v is not None else np.nan for v in values], "o-", label=label)
    finals = [(r["epoch"], r["final_test"]) for r in history if r.get("final_test")]   # the multi-view test
    for epoch, final in finals[-1:]:
        ax_err.plot([epoch], [100 * final["top1_error"]], "*", color="tab:red", markersize=14,
                    label=f"final test top-1 error, {views_name(final['views'])} averaged")
    ax_err.set_xlabel("epoch")
    ax_err.set_ylabel("error (%)")
    ax_err.legend()
    for ax in (ax_loss, ax_err):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
