"""Image transforms on CHW NumPy arrays.

Every transform is a small class called as ``transform(img, rng)``: ``img``
is a (C, H, W) array and ``rng`` a ``numpy.random.Generator``, the only
source of randomness (never global state), so a loader seeded per epoch is
exactly reproducible. Deterministic transforms ignore ``rng``.

The AlexNet recipe (Krizhevsky, Sutskever & Hinton, "ImageNet Classification
with Deep Convolutional Neural Networks", NIPS 2012, Sec. 4.1 and 4.2):
train on random 224x224 crops of 256x256 images plus horizontal flips and
"fancy PCA" colour noise; test on ten crops (4 corners + centre, and their
mirrors), averaging the softmax.
"""
import numpy as np

from ..shapes import pair


def _check_chw(img, who):
    if img.ndim != 3:
        raise ValueError(f"{who} expects a (C, H, W) image, got shape {img.shape}")


def _check_fits(img, h, w, who, padding=0):
    """An h x w crop fits in ``img`` (C, H, W) once ``padding`` pixels are added on every border."""
    _check_chw(img, who)
    c, height, width = img.shape[0], img.shape[1] + 2 * padding, img.shape[2] + 2 * padding
    if h > height or w > width:
        raise ValueError(f"{who}: crop {h}x{w} is larger than the image "
                         f"{height}x{width} (shape {(c, height, width)})")


def _check_float(img, who):
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"{who} expects a float image, got dtype {img.dtype} "
                        f"(apply ToFloat first)")


class Compose:
    """Apply ``transforms`` in order, all drawing from the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img, rng):
        for t in self.transforms:
            img = t(img, rng)
        return img

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class ToFloat:
    """uint8 (C, H, W) in 0..255 -> float32 in [0, 1]: ``x / 255``.

    A float image is returned as float32, unchanged in value.
    """

    def __call__(self, img, rng=None):
        if img.dtype == np.uint8:
            return img.astype(np.float32) / np.float32(255.0)
        _check_float(img, "ToFloat")
        return img.astype(np.float32, copy=False)


class Normalize:
    """Per-channel ``(x - mean[c]) / std[c]`` on a float (C, H, W) image."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)  # (C,)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)    # (C,)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean has {self.mean.size} values but std has "
                             f"{self.std.size}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def __call__(self, img, rng=None):
        _check_chw(img, "Normalize")
        _check_float(img, "Normalize")
        if img.shape[0] != self.mean.size:
            raise ValueError(f"Normalize: expected {self.mean.size} channels, "
                             f"got {img.shape[0]} (image shape {img.shape})")
        mean = self.mean[:, None, None]  # (C, 1, 1)
        std = self.std[:, None, None]    # (C, 1, 1)
        return ((img - mean) / std).astype(np.float32, copy=False)


class RandomCrop:
    """A random ``size`` crop, after zero-padding each border by ``padding``.

    The top-left corner is uniform over every position where the crop fits
    (AlexNet: 224x224 crops of 256x256 images).
    """

    def __init__(self, size, padding=0):
        self.size = pair(size, "size", "RandomCrop")  # (h, w)
        if int(padding) < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        self.padding = int(padding)

    def __call__(self, img, rng):
        h, w, p = *self.size, self.padding
        _check_fits(img, h, w, "RandomCrop", padding=p)
        c, height, width = img.shape
        top = int(rng.integers(0, height + 2 * p - h + 1))    # the window, in the padded image's coordinates
        left = int(rng.integers(0, width + 2 * p - w + 1))
        if not p:
            return img[:, top:top + h, left:left + w]          # (C, h, w)
        # The same values as np.pad(img) then slicing, without padding the whole image: zeros, and the part
        # of the image that falls inside the window (tests/test_data.py checks it against np.pad).
        y0, x0 = top - p, left - p                     # the window's corner in the image's coordinates (< 0: padding)
        rows = slice(max(y0, 0), min(y0 + h, height))  # the image rows inside the window
        cols = slice(max(x0, 0), min(x0 + w, width))   # the image columns inside it
        out = np.zeros((c, h, w), dtype=img.dtype)                                    # (C, h, w)
        if rows.start < rows.stop and cols.start < cols.stop:
            out[:, rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0] = img[:, rows, cols]
        return out


class RandomHorizontalFlip:
    """Mirror left-right (``img[:, :, ::-1]``) with probability ``p``.

    Exactly one number is drawn from ``rng`` per call, whatever ``p``.
    """

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, img, rng):
        _check_chw(img, "RandomHorizontalFlip")
        if rng.random() < self.p:
            return img[:, :, ::-1]  # (C, H, W), columns reversed
        return img


class CenterCrop:
    """The central ``size`` crop: top = (H - h) // 2, left = (W - w) // 2."""

    def __init__(self, size):
        self.size = pair(size, "size", "CenterCrop")  # (h, w)

    def __call__(self, img, rng=None):
        h, w = self.size
        _check_fits(img, h, w, "CenterCrop")
        top = (img.shape[1] - h) // 2
        left = (img.shape[2] - w) // 2
        return img[:, top:top + h, left:left + w]  # (C, h, w)


class FiveCrop:
    """The paper's five test views: (C, H, W) -> (5, C, h, w), the four corners and the centre.

    Order: top-left, top-right, bottom-left, bottom-right, centre (Krizhevsky et al. 2012, Sec. 4.1,
    without the mirrors: for images trained without flips, such as the digits, where a mirrored view
    is one the net never saw).
    """

    def __init__(self, size):
        self.size = pair(size, "size", type(self).__name__)  # (h, w)

    def __call__(self, img, rng=None):
        h, w = self.size
        _check_fits(img, h, w, type(self).__name__)
        H, W = img.shape[1], img.shape[2]
        top, left = (H - h) // 2, (W - w) // 2
        return np.stack([
            img[:, :h, :w],                        # top-left      (C, h, w)
            img[:, :h, W - w:],                    # top-right
            img[:, H - h:, :w],                    # bottom-left
            img[:, H - h:, W - w:],                # bottom-right
            img[:, top:top + h, left:left + w],    # centre
        ])                                         # (5, C, h, w)


class TenCrop(FiveCrop):
    """The paper's test view: (C, H, W) -> (10, C, h, w).

    Order: the five crops of :class:`FiveCrop` (top-left, top-right, bottom-left, bottom-right,
    centre), then the same five mirrored left-right (Krizhevsky et al. 2012, Sec. 4.1).
    The network's softmax outputs over the ten are averaged.
    """

    def __call__(self, img, rng=None):
        crops = super().__call__(img)              # (5, C, h, w)
        mirrored = crops[:, :, :, ::-1]            # (5, C, h, w), columns reversed
        return np.concatenate([crops, mirrored])   # (10, C, h, w)


def compute_rgb_pca(images):
    """Eigen-decomposition of the 3x3 RGB covariance of a set of images.

    ``images``: float pixels in [0, 1], either an array (N, 3, H, W) or an
    iterable of arrays (N, 3, H, W) or (3, H, W) (e.g. a dataset streamed in
    chunks); uint8 arrays are first divided by 255. Every pixel is one
    3-vector sample x; the covariance is ``E[x x^T] - E[x] E[x]^T``,
    accumulated in float64.

    Returns ``(eigvals (3,), eigvecs (3, 3))``, eigenvalues in decreasing
    order and ``eigvecs[:, i]`` the unit eigenvector of ``eigvals[i]``, for
    :class:`PCAColorJitter`.
    """
    if isinstance(images, np.ndarray):
        images = [images]
    total = np.zeros(3)            # sum of x
    outer = np.zeros((3, 3))       # sum of x x^T
    count = 0
    for chunk in images:
        chunk = np.asarray(chunk)
        if chunk.ndim == 3:
            chunk = chunk[None]    # (1, 3, H, W)
        if chunk.ndim != 4 or chunk.shape[1] != 3:
            raise ValueError(f"compute_rgb_pca expects RGB images (N, 3, H, W) or (3, H, W), "
                             f"got shape {chunk.shape}")
        if chunk.dtype == np.uint8:
            chunk = chunk / 255.0
        pixels = chunk.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1)  # (3, N*H*W)
        total += pixels.sum(axis=1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    if count < 2:
        raise ValueError(f"compute_rgb_pca needs at least 2 pixels, got {count}")
    mean = total / count                               # (3,)
    cov = outer / count - np.outer(mean, mean)         # (3, 3)
    eigvals, eigvecs = np.linalg.eigh(cov)             # ascending
    order = np.argsort(eigvals)[::-1]                  # decreasing
    eigvals = np.clip(eigvals[order], 0.0, None)       # round-off can give -1e-17
    return eigvals, eigvecs[:, order]


class PCAColorJitter:
    """AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al. 2012, Sec. 4.1).

    To every pixel of a float RGB image (3, H, W) add the same vector
    ``eigvecs @ (alpha * eigvals)`` = [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T,
    where (l_i, p_i) are the eigenvalues/eigenvectors of the training set's
    RGB covariance (:func:`compute_rgb_pca`) and alpha ~ N(0, std^2), 3
    values drawn from ``rng`` once per call (once per image presentation).
    The paper uses std = 0.1.
    """

    def __init__(self, eigvals, eigvecs, std=0.1):
        self.eigvals = np.asarray(eigvals, dtype=np.float64)
        self.eigvecs = np.asarray(eigvecs, dtype=np.float64)
        if self.eigvals.shape != (3,) or self.eigvecs.shape != (3, 3):
            raise ValueError(f"PCAColorJitter expects eigvals (3,) and eigvecs (3, 3), got "
                             f"{self.eigvals.shape} and {self.eigvecs.shape}")
        if std < 0:
            raise ValueError(f"PCAColorJitter: std must be >= 0, got {std}")
        self.std = float(std)

    def __call__(self, img, rng):
        _check_chw(img, "PCAColorJitter")
        _check_float(img, "PCAColorJitter")
        if img.shape[0] != 3:
            raise ValueError(f"PCAColorJitter expects 3 (RGB) channels, got {img.shape[0]} "
                             f"(image shape {img.shape})")
        alpha = rng.normal(0.0, self.std, size=3)              # (3,)
        shift = self.eigvecs @ (alpha * self.eigvals)          # (3,)
        return (img + shift.astype(np.float32)[:, None, None]).astype(np.float32, copy=False)
