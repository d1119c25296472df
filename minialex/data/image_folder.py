"""ImageFolder: JPEG/PNG images in one sub-directory per class (torchvision layout).

    root/
      cat/  001.jpg  002.png ...
      dog/  xyz.jpeg ...

Classes are the sub-directory names sorted; a class's label is its index in
that list. Files are found recursively inside each class directory, sorted,
filtered by extension (case-insensitive), following symbolic links; a
directory reached a second time (a link back up the tree, a loop, or a second
link to the same directory) is skipped with a warning, so no image is counted
twice. Decoding needs Pillow, imported only when an ImageFolder is created.
"""
import os
import warnings
from pathlib import Path

import numpy as np

from .loader import Dataset, DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class BadImageError(OSError):
    """An image file that Pillow could not decode; the message names the path."""


def _import_pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("ImageFolder needs Pillow to decode JPEG/PNG images: "
                          "pip install pillow") from None
    return Image


def resized_shape(height, width, shorter):
    """(new_height, new_width) with the shorter side = ``shorter``, aspect kept.

    The longer side is ``int(shorter * longer / shorter_side)`` (as torchvision).
    """
    if height <= width:
        return shorter, int(shorter * width / height)
    return int(shorter * height / width), shorter


class ImageFolder(Dataset):
    """Images as ``(uint8 (3, H, W) RGB, label int)`` with the shorter side = ``resize``.

    ``ImageFolder(root, transform=None, resize=256, on_error="skip",
    extensions=IMAGE_EXTENSIONS)``. Each image is decoded by Pillow,
    converted to RGB and resized (bilinear, aspect kept) so its shorter side
    is ``resize`` (``resize=None`` keeps the original size).

    A file that cannot be decoded: with ``on_error="raise"``, ``load``/``get``
    raise :class:`BadImageError` naming the path; with ``on_error="skip"``
    they emit a warning naming the path and return None, and the DataLoader
    leaves that sample out of its batch (see ``loader.skipped``). A bad file
    is remembered in ``self.bad_paths`` and not decoded again.
    """

    def __init__(self, root, transform=None, resize=256, on_error="skip",
                 extensions=IMAGE_EXTENSIONS):
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if resize is not None and int(resize) <= 0:
            raise ValueError(f"resize must be a positive int or None, got {resize}")
        self._Image = _import_pillow()
        self.root = Path(root)
        self.transform = transform
        self.resize = None if resize is None else int(resize)
        self.on_error = on_error
        self.extensions = tuple(e.lower() for e in extensions)
        self.bad_paths = set()
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder root {self.root} does not exist or is not a "
                                    f"directory")
        self.classes = sorted(entry.name for entry in os.scandir(self.root)
                              if entry.is_dir() and not entry.name.startswith("."))
        if not self.classes:
            raise FileNotFoundError(f"ImageFolder root {self.root} has no class sub-directories "
                                    f"(expected root/<class name>/<image files>)")
        self.num_classes = len(self.classes)
        self.samples = []  # (path, label) pairs
        for label, name in enumerate(self.classes):
            files = self._find_images(self.root / name)
            if not files:
                raise FileNotFoundError(f"class directory {self.root / name} contains no images "
                                        f"with extensions {', '.join(self.extensions)}")
            self.samples.extend((path, label) for path in files)
        self.targets = [label for _, label in self.samples]

    def _find_images(self, directory):
        found, searched = [], set()          # (device, inode) of every directory searched
        for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in searched:
                dirnames[:] = []             # do not descend: it was (or is being) searched already
                warnings.warn(f"skipping {dirpath}: it links to a directory already searched (a symbolic-link "
                              f"loop or a second link to it), so its images would be counted twice",
                              RuntimeWarning, stacklevel=3)
                continue
            searched.add((st.st_dev, st.st_ino))
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.lower().endswith(self.extensions):
                    found.append(Path(dirpath) / filename)
        return found

    def __len__(self):
        return len(self.samples)

    def decode(self, path):
        """Decode the file at ``path`` -> uint8 (3, H, W), shorter side = ``self.resize``."""
        Image = self._Image
        with Image.open(path) as img:
            img = img.convert("RGB")  # also forces the full decode
        if self.resize is not None:
            h, w = resized_shape(img.height, img.width, self.resize)
            if (h, w) != (img.height, img.width):
                bilinear = getattr(Image, "Resampling", Image).BILINEAR
                img = img.resize((w, h), bilinear)  # Pillow takes (width, height)
        pixels = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))  # (3, H, W)

    def check_readable(self):
        """Raise DatasetError unless every class has at least one image that decodes.

        Decodes each class's files in order up to the first good one (one decode per class for a
        healthy folder). The bad files met on the way are warned about as ``load`` would; a class
        with no readable image at all is one error naming its directory."""
        first = {}
        for i, (_, label) in enumerate(self.samples):
            first.setdefault(label, []).append(i)
        for label, indices in first.items():
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                ok = False
                for i in indices:
                    try:
                        if self.load(i) is not None:
                            ok = True
                            break
                    except BadImageError:
                        if self.on_error == "raise":
                            raise
            if not ok:
                path = self.root / self.classes[label]
                reason = str(seen[0].message).removeprefix("skipping ") if seen else "unknown"
                raise DatasetError(f"class directory {path}: none of its {len(indices)} image files can be "
                                   f"decoded (the first: {reason})")
            for w in seen:
                warnings.warn(w.message, w.category, stacklevel=2)

    def load(self, i):
        path, label = self.samples[i]
        if path in self.bad_paths and self.on_error == "skip":
            return None
        try:
            image = self.decode(path)
        except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ...
            self.bad_paths.add(path)
            message = f"cannot decode image {path}: {type(exc).__name__}: {exc}"
            if self.on_error == "raise":
                raise BadImageError(message) from exc
            warnings.warn(f"skipping {message}", RuntimeWarning, stacklevel=2)
            return None
        return image, label
