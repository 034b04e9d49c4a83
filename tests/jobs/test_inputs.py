"""Bad input loses nothing: unreadable images are recorded and the job goes on; a full disk stops the job
with a message and a rerun resumes."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("PIL")
pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from deepshap.jobs import StoreWriteError, explain_dataset, open_job  # noqa: E402
from deepshap.jobs.images import to_channels_first  # noqa: E402
from tests.helpers.jobs_models import digits, tiny_cnn, tiny_cnn_rgb  # noqa: E402


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Ten good 8x8 PNG/JPEG images, a 12x10 one, a file that is no image and a truncated PNG."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):
        pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        target = images / f"a{i:02d}.png" if i % 3 else images / "sub" / f"b{i:02d}.jpg"
        Image.fromarray(pixels).save(target)
    Image.fromarray((rng.random((10, 12, 3)) * 255).astype(np.uint8)).save(images / "c-wide.png")
    (images / "d-garbage.png").write_bytes(b"this is not an image")
    whole = (images / "a01.png").read_bytes()
    (images / "e-truncated.png").write_bytes(whole[: len(whole) // 2])
    return images


def run(folder: Path, out: Path, **options: object) -> object:
    settings = {"background": 4, "batch_size": 4, "quiet": True, "image_size": (8, 8), **options}
    return explain_dataset(tiny_cnn_rgb(), folder, out, "deep", preprocess=to_channels_first, **settings)


def test_unreadable_images_are_recorded_and_the_job_goes_on(folder: Path, tmp_path: Path) -> None:
    result = run(folder, tmp_path / "out")
    assert (result.n_images, result.n_errors) == (13, 3)
    rows = {row["id"]: row for row in open_job(result.out).index().to_pylist()}
    assert "pass --resize" in rows["c-wide.png"]["error"] and "12x10" in rows["c-wide.png"]["error"]
    assert "cannot identify image" in rows["d-garbage.png"]["error"]
    assert "truncated" in rows["e-truncated.png"]["error"]
    assert rows["sub/b00.jpg"]["error"] is None and rows["sub/b00.jpg"]["classes"] is not None
    values = open_job(result.out).values()[:]
    failed = [row["position"] for row in rows.values() if row["error"] is not None]
    good = [row["position"] for row in rows.values() if row["error"] is None]
    assert np.isnan(values[failed]).all() and np.isfinite(values[good]).all()
    assert max(row["gap"] for row in rows.values() if row["gap"] is not None) < 1e-4


def test_resize_and_crop_explain_the_wide_image(folder: Path, tmp_path: Path) -> None:
    result = run(folder, tmp_path / "out", resize=True, crop=True)
    rows = {row["id"]: row for row in open_job(result.out).index().to_pylist()}
    assert rows["c-wide.png"]["error"] is None and result.n_errors == 2


def test_the_decoder_matches_pillow(folder: Path) -> None:
    from deepshap.jobs.images import ImageDecoder

    decoded = ImageDecoder((8, 8)).decode(folder / "a01.png")
    expected = np.asarray(Image.open(folder / "a01.png").convert("RGB"), dtype=np.float32) / 255
    assert decoded.shape == (8, 8, 3) and np.array_equal(decoded, expected)
    grey = ImageDecoder((6, 4), resize=True, crop=True, mode="L").decode(folder / "c-wide.png")
    assert grey.shape == (4, 6, 1)


def test_a_full_disk_stops_the_job_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepshap.jobs.store import ResultStore

    images = digits(32)
    real_write = ResultStore._write_rows

    def write_until_full(store: ResultStore, chunk: int, rows: list[dict]) -> None:
        if len(store.done) >= 2:  # two chunks fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(store, chunk, rows)

    monkeypatch.setattr(ResultStore, "_write_rows", write_until_full)
    out = tmp_path / "out"
    with pytest.raises(StoreWriteError, match="No space left on device.*rerun the same command"):
        explain_dataset(tiny_cnn(), images, out, "deep", background=8, batch_size=8, quiet=True)
    assert len(list((out / "index").glob("chunk-*.parquet"))) == 2
    monkeypatch.setattr(ResultStore, "_write_rows", real_write)
    result = explain_dataset(tiny_cnn(), images, out, "deep", background=8, batch_size=8, quiet=True)
    assert result.n_explained_now == 16 and result.n_images == 32


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_real_full_tmpfs(tmp_path: Path) -> None:
    """The same on a 96 KiB tmpfs that fills up half-way (needs root to mount; the test above covers
    the behaviour everywhere)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "96k"):
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        images = digits(256)
        out = disk / "out"
        with pytest.raises(StoreWriteError, match="No space left on device"):
            explain_dataset(tiny_cnn(), images, out, "deep", background=8, batch_size=8, quiet=True)
        survived = len(list((out / "index").glob("chunk-*.parquet")))
        assert 0 < survived < 32
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        result = explain_dataset(tiny_cnn(), images, out, "deep", background=8, batch_size=8, quiet=True)
        assert result.n_images == 256 and result.n_explained_now == 256 - 8 * survived
        fresh = explain_dataset(
            tiny_cnn(), images, tmp_path / "fresh", "deep", background=8, batch_size=8, quiet=True
        )
        assert open_job(out).values()[:].tobytes() == open_job(fresh.out).values()[:].tobytes()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/deepshap-job")  # root may write anywhere but here
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out"
    with pytest.raises(StoreWriteError, match="cannot write the results"):
        explain_dataset(tiny_cnn(), digits(8), target, "deep", background=4, batch_size=8, quiet=True)
