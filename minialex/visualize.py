"""Pictures of what a trained AlexNet has learned, shared by the notebooks and the command line.

* Filters (the paper's Figure 3): the learned conv1 kernels as a grid of little images.
  ``filter_grid`` is the one in :mod:`minialex.train.plots` (re-exported here); ``save_filters``
  writes a model's grid to a PNG.
* Retrieval (the paper's Figure 4, Sec. 6.1): images whose fc7 feature vectors (the last hidden
  layer, after its ReLU) are closest in Euclidean distance to a query image's.
  ``fc7_features`` -> ``nearest_neighbours`` -> ``neighbours_grid`` / ``save_neighbours_figure``.
* ``confusion_matrix`` (NumPy) and ``plot_confusion_matrix`` (matplotlib).

Everything that writes a PNG uses the small encoder in :mod:`minialex.train.plots`, so it needs
neither matplotlib nor Pillow. Only the ``plot_*`` functions draw with matplotlib; without it they
raise an ImportError that says ``pip install "minialex[plot]"``.
"""
import numpy as np

from . import backend
from .models.alexnet import LAYER_NAMES
from .tensor import Tensor, no_grad
from .train.plots import filter_grid, write_png

__all__ = ["confusion_matrix", "fc7_features", "filter_grid", "image_to_uint8", "nearest_neighbours",
           "neighbours_from_features", "neighbours_grid", "plot_confusion_matrix", "save_filters",
           "save_neighbours_figure"]


def _pyplot():
    """matplotlib.pyplot, or an ImportError that names the extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('this picture needs matplotlib: pip install "minialex[plot]"') from None
    return plt


# ----------------------------------------------------------------------------- filters (Figure 3)
def save_filters(model, path, layer="conv1"):
    """Write ``model``'s ``layer`` kernels (O, C, kH, kW) as a grid PNG at ``path`` (Figure 3); returns path.

    Three-channel kernels are drawn in colour, others show their first input channel in grey;
    each kernel is min-max scaled on its own (see :func:`filter_grid`).
    """
    weight = backend.to_device(model.layer(layer).weight.data, "cpu")   # (O, C, kH, kW)
    write_png(path, filter_grid(weight))
    return path


# ----------------------------------------------------------------------------- retrieval (Figure 4)
@no_grad()
def fc7_features(model, images, batch_size=256, device=None):
    """The fc7 activations (after its ReLU) of an AlexNet for float images (N, C, H, W) -> (N, D).

    D is 4096 for the ImageNet variants, ``hidden`` (256) for "mini". The model runs in eval mode
    (dropout off) and is put back in the mode it was in.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"fc7_features: expected images (N, C, H, W), got shape {images.shape}")
    fc7 = LAYER_NAMES[model.variant]["fc7"][1]
    head = list(model.classifier)[:fc7 + 2]         # ... fc7, ReLU: the 4096-d code of Sec. 6.1
    was_training = model.training
    model.eval()
    device = device or next(iter(model.parameters())).device
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = model.features(Tensor(images[i:i + batch_size], device=device))   # (n, C5, h, w)
            if model.avgpool is not None:
                x = model.avgpool(x)
            x = x.flatten(1)                                                     # (n, C5*h*w)
            for layer in head:
                x = layer(x)
            out.append(x.numpy())                                                # (n, D)
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def neighbours_from_features(features, query_indices, k=6, exclude_self=True):
    """For each query row of ``features`` (N, D), the indices (Q, k) of its k nearest rows by
    Euclidean distance, nearest first; the query itself is left out when ``exclude_self``.

    Distances are computed as |q|^2 - 2 q.x + |x|^2 in float64 (one matrix product)."""
    f = np.asarray(features, dtype=np.float64)                  # (N, D)
    q_idx = np.asarray(query_indices, dtype=np.int64).reshape(-1)
    if not 0 < k <= len(f) - int(exclude_self):
        raise ValueError(f"k must be between 1 and {len(f) - int(exclude_self)}, got {k}")
    q = f[q_idx]                                                # (Q, D)
    d2 = (q * q).sum(1)[:, None] - 2.0 * q @ f.T + (f * f).sum(1)[None, :]   # (Q, N) squared distances
    if exclude_self:
        d2[np.arange(len(q_idx)), q_idx] = np.inf
    order = np.argsort(d2, axis=1, kind="stable")               # ties: the lower index first
    return order[:, :k]


def nearest_neighbours(model, images, query_indices, k=6, batch_size=256):
    """Indices (Q, k) into ``images`` of the k images whose fc7 features are closest (Euclidean) to
    those of each query image ``images[query_indices]``, nearest first, the query excluded.

    The paper's Figure 4: "the Euclidean distance between two 4096-dimensional vectors" of the last
    hidden layer (Sec. 6.1). images: float (N, C, H, W), already normalised as the model expects."""
    return neighbours_from_features(fc7_features(model, images, batch_size), query_indices, k)


def image_to_uint8(image):
    """One float image (C, H, W) or (H, W) -> uint8 (H, W) grey or (H, W, 3) RGB, min-max scaled."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)   # (H, W) or (H, W, C)
    lo, hi = a.min(), a.max()
    a = (a - lo) / (hi - lo if hi > lo else 1.0)
    return np.round(a * 255).astype(np.uint8)


def neighbours_grid(images, query_indices, neighbours, scale=2, pad=2, gap=6):
    """One uint8 picture: a row per query, the query image, a gap, then its neighbours.

    images (N, C, H, W) floats; neighbours (Q, k) indices (from :func:`nearest_neighbours`).
    Returns (rows, cols) grey or (rows, cols, 3) RGB; background white."""
    images = np.asarray(images)
    neighbours = np.asarray(neighbours)
    q_idx = np.asarray(query_indices).reshape(-1)
    tiles = [[image_to_uint8(images[q])] + [image_to_uint8(images[j]) for j in row]
             for q, row in zip(q_idx, neighbours)]
    h, w = tiles[0][0].shape[:2]
    h, w = h * scale, w * scale
    k = neighbours.shape[1]
    colour = tiles[0][0].ndim == 3
    rows = len(tiles) * (h + pad) + pad
    cols = pad + (w + pad) + gap + k * (w + pad)
    grid = np.full((rows, cols, 3) if colour else (rows, cols), 255, np.uint8)
    for r, row in enumerate(tiles):
        y = pad + r * (h + pad)
        for c, tile in enumerate(row):
            x = pad + c * (w + pad) + (gap if c else 0)
            grid[y:y + h, x:x + w] = tile.repeat(scale, 0).repeat(scale, 1)
    return grid


def save_neighbours_figure(model, images, query_indices, path, k=6, batch_size=256):
    """Write the retrieval picture (Figure 4) for ``images[query_indices]`` to the PNG ``path``:
    each row is a query followed by its k nearest images by fc7 distance. Returns the neighbours (Q, k)."""
    neighbours = nearest_neighbours(model, images, query_indices, k, batch_size)
    write_png(path, neighbours_grid(images, query_indices, neighbours))
    return neighbours


# ----------------------------------------------------------------------------- confusion matrix
def confusion_matrix(labels, predictions, num_classes=None):
    """Counts (K, K): row = true class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in length")
    K = num_classes or int(max(labels.max(initial=-1), predictions.max(initial=-1)) + 1)
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def plot_confusion_matrix(cm, classes=None, ax=None, title="confusion matrix"):
    """Draw ``cm`` (K, K) with its counts written in the cells; returns the matplotlib Axes."""
    plt = _pyplot()
    cm = np.asarray(cm)
    K = cm.shape[0]
    classes = [str(c) for c in (classes if classes is not None else range(K))]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * K + 1.5, 0.45 * K + 1.2))
    ax.imshow(cm, cmap="Blues")
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(K), classes)
    ax.set_yticks(range(K), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax
