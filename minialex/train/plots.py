"""The pictures a run leaves behind.

* ``conv1_filters.png``: the learned conv1 kernels as a grid of little images, the paper's Figure 3.
  Written with a 20-line PNG encoder (zlib), so it needs neither matplotlib nor Pillow.
* ``curves.png``: train loss and test error per epoch, with matplotlib when it is installed
  (``pip install minialex[plot]``); without it the plot is skipped and the caller says so.
"""
import struct
import zlib

import numpy as np


def write_png(path, image):
    """Write ``image`` uint8, (H, W) grey or (H, W, 3) RGB, as a PNG file (8 bits, no filtering)."""
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
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                + chunk(b"IEND", b""))


def filter_grid(weight, scale=None, pad=1, columns=None):
    """conv1 weights (O, C, kH, kW) -> one uint8 image of all O kernels, like the paper's Figure 3.

    Each kernel is min-max scaled to 0..255 on its own (so its pattern, not its size, shows),
    enlarged ``scale`` times (nearest neighbour) and placed in a grid (16 columns, 8 for fewer than 64
    kernels) with ``pad`` pixels of white between cells. C == 3 gives an RGB image (H, W, 3); any
    other C shows channel 0 in grey (H, W).
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected weights (O, C, kH, kW), got shape {w.shape}")
    O, C, kH, kW = w.shape
    w = w if C == 3 else w[:, :1]                                  # (O, 3 or 1, kH, kW)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    w = (w - lo) / np.where(hi > lo, hi - lo, 1.0)                 # each kernel in [0, 1]
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


def save_filter_grid(path, weight):
    write_png(path, filter_grid(weight))


def save_curves(path, history):
    """Plot train loss and test errors per epoch into ``path``. Returns False (and draws nothing)
    when matplotlib is not installed."""
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
    for key, label in (("test_top1_error", "test top-1 error"), ("test_top5_error", "test top-5 error")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax_err.plot(epochs, [100 * v if v is not None else np.nan for v in values], "o-", label=label)
    ax_err.set_xlabel("epoch")
    ax_err.set_ylabel("error (%)")
    ax_err.legend()
    for ax in (ax_loss, ax_err):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
