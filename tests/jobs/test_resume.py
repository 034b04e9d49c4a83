"""Jobs are resumable and exactly once: a job killed (SIGKILL) or interrupted (SIGINT) half-way and rerun
ends with the store an uninterrupted run writes, bit for bit; another job's store is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("torch")

from deepshap.jobs import JobMismatchError, explain_dataset, open_job  # noqa: E402
from tests.helpers.jobs_models import digits, entry_point, tiny_cnn  # noqa: E402
from tests.helpers.paths import child_environment  # noqa: E402

N_IMAGES, BATCH = 96, 8


def cli(out: Path, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "deepshap", "explain", "--model", entry_point("slow_tiny_cnn"), "--data",
        str(data), "--explainer", "deep", "--out", str(out), "--background", "10", "--batch-size",
        str(BATCH), "--outputs", "2", "--quiet", "--report", "0", *extra,
    ]  # fmt: skip


def committed(out: Path) -> int:
    return len(list((out / "index").glob("chunk-*.parquet")))


def start_and_stop(out: Path, data: Path, sig: int, after_chunks: int) -> subprocess.CompletedProcess:
    """Start the CLI, send ``sig`` once ``after_chunks`` chunks are committed; return how it ended."""
    process = subprocess.Popen(
        cli(out, data), env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while committed(out) < after_chunks and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # land anywhere in the next chunk: reading, explaining or committing
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def same_results(a: Path, b: Path) -> None:
    """Bit-for-bit values and equal index rows (but the seconds each image took)."""
    first, second = open_job(a), open_job(b)
    assert np.array_equal(first.values()[:], second.values()[:], equal_nan=True)
    assert first.values()[:].tobytes() == second.values()[:].tobytes()
    rows_a = first.index().drop_columns(["seconds"]).to_pylist()
    rows_b = second.index().drop_columns(["seconds"]).to_pylist()
    assert rows_a == rows_b and len(rows_a) == N_IMAGES


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, digits(N_IMAGES))
    return path


@pytest.fixture(scope="module")
def reference(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "store"
    done = subprocess.run(
        cli(out, dataset), env=child_environment(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(
    dataset: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    killed = start_and_stop(out, dataset, signal.SIGKILL, after_chunks=3)
    assert killed.returncode == -signal.SIGKILL
    survived = committed(out)
    assert 3 <= survived < N_IMAGES // BATCH, "the kill must land mid-job"
    rerun = subprocess.run(
        cli(out, dataset), env=child_environment(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"({N_IMAGES - survived * BATCH} done in this run)" in rerun.stdout
    same_results(out, reference)


@pytest.mark.slow
def test_sigint_flushes_what_is_done_and_rerun_completes(
    dataset: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    stopped = start_and_stop(out, dataset, signal.SIGINT, after_chunks=2)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "Rerun the same command to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    survived = committed(out)
    assert 2 <= survived < N_IMAGES // BATCH
    assert not list(out.rglob("*.tmp")), "an interrupted commit left a temporary file"
    rerun = subprocess.run(
        cli(out, dataset), env=child_environment(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    same_results(out, reference)


def job(out: Path, images: np.ndarray, **options: object) -> object:
    settings = {"background": 10, "batch_size": BATCH, "outputs": 2, "quiet": True, **options}
    return explain_dataset(tiny_cnn(), images, out, "deep", **settings)


def test_resume_redoes_only_missing_chunks(tmp_path: Path) -> None:
    images = digits(40)
    job(tmp_path / "full", images)
    partial = tmp_path / "partial"
    job(partial, images)
    # lose two chunks (as a crash between their Zarr write and index file would) and a Zarr chunk file
    for chunk in (1, 3):
        (partial / "index" / f"chunk-{chunk:08d}.parquet").unlink()
    (partial / "index.parquet").unlink()
    result = job(partial, images)
    assert result.n_explained_now == 2 * BATCH and result.n_images == 40
    full, resumed = open_job(tmp_path / "full"), open_job(partial)
    assert full.values()[:].tobytes() == resumed.values()[:].tobytes()


def test_gradient_resume_gives_the_same_draws(tmp_path: Path) -> None:
    images = digits(24)
    options = {"explainer_options": {"nsamples": 16}}
    first = tmp_path / "a"
    explain_dataset(tiny_cnn(), images, first, "gradient", background=10, batch_size=8, quiet=True, **options)
    (first / "index" / "chunk-00000001.parquet").unlink()
    again = explain_dataset(
        tiny_cnn(), images, first, "gradient", background=10, batch_size=8, quiet=True, **options
    )
    assert again.n_explained_now == 8
    fresh = tmp_path / "b"
    explain_dataset(tiny_cnn(), images, fresh, "gradient", background=10, batch_size=8, quiet=True, **options)
    assert open_job(first).values()[:].tobytes() == open_job(fresh).values()[:].tobytes()
    other_seed = tmp_path / "c"
    explain_dataset(
        tiny_cnn(), images, other_seed, "gradient", background=10, batch_size=8, quiet=True, seed=1, **options
    )
    assert not np.array_equal(open_job(other_seed).values()[:], open_job(fresh).values()[:])


def test_another_job_is_refused_unless_overwrite(tmp_path: Path) -> None:
    images = digits(16)
    job(tmp_path, images)
    with pytest.raises(JobMismatchError, match="outputs"):
        job(tmp_path, images, outputs=1)
    with pytest.raises(JobMismatchError, match="data"):
        job(tmp_path, digits(16, seed=1))
    replaced = job(tmp_path, images, outputs=1, overwrite=True)
    assert replaced.n_explained_now == 16
    assert open_job(tmp_path).values().shape == (16, 1, 8, 8, 1)


def test_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JobMismatchError, match="not empty"):
        job(tmp_path, digits(8), overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_commit_twice_writes_once(tmp_path: Path) -> None:
    from deepshap.jobs.store import ResultStore

    job(tmp_path, digits(16))
    results = open_job(tmp_path)
    store = ResultStore(tmp_path, results.manifest)
    assert store.done == {0, 1}
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "index").iterdir())
    from deepshap.jobs.engine import ChunkResult

    store.commit(ChunkResult(0, np.zeros((8, 1, 8, 8, 2), np.float32), [{"error": None}] * 8))
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "index").iterdir())
    assert before == after
    assert not np.all(results.values()[:8] == 0)
