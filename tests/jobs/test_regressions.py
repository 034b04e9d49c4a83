"""Regressions found in review: bad images, changed weights, failed first runs, arguments, durability."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("torch")

from deepshap.jobs import explain_dataset, open_job  # noqa: E402
from tests.helpers import jobs_models  # noqa: E402
from tests.helpers.jobs_models import digits, entry_point  # noqa: E402


def blank_at(n: int, blank: list[int]) -> np.ndarray:
    images = digits(n)
    images[blank] = 0.0
    return images


@pytest.mark.parametrize(("explainer", "model"), [("deep", "raises_on_blank"), ("gradient", "nan_on_blank")])
def test_a_failing_image_is_recorded_and_the_job_goes_on(tmp_path: Path, explainer: str, model: str) -> None:
    images = blank_at(12, [5])
    options = {"nsamples": 8} if explainer == "gradient" else {}
    result = explain_dataset(
        getattr(jobs_models, model)(), images, tmp_path / "out", explainer,
        background=digits(4, seed=1), batch_size=4, quiet=True, explainer_options=options,
    )  # fmt: skip
    assert (result.n_images, result.n_errors) == (12, 1)
    job = open_job(result.out)
    rows = job.index().to_pylist()
    assert rows[5]["error"] is not None and rows[5]["fx"] is None
    assert all(row["error"] is None and np.isfinite(row["gap"]) for i, row in enumerate(rows) if i != 5)
    values = job.values()[:]
    assert np.isnan(values[5]).all() and np.isfinite(np.delete(values, 5, axis=0)).all()


def test_every_image_of_the_first_chunk_failing_stops_the_job(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="every image of the first chunk failed.*a blank image"):
        explain_dataset(
            jobs_models.raises_on_blank(), blank_at(8, [0, 1, 2, 3]), tmp_path / "out", "deep",
            background=np.ones((2, 1, 8, 8), np.float32), batch_size=4, quiet=True,
        )  # fmt: skip


def save_checkpoint(path: Path, shift: float) -> None:
    state = jobs_models.tiny_cnn().state_dict()
    np.savez(path, **{name: tensor.numpy() + shift for name, tensor in state.items()})


def test_resuming_with_other_weights_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepshap.jobs import JobMismatchError

    checkpoint = tmp_path / "weights.npz"
    monkeypatch.setenv("DEEPSHAP_TEST_CHECKPOINT", str(checkpoint))
    out, images = tmp_path / "out", digits(16)
    settings = {"background": 4, "batch_size": 4, "quiet": True}
    save_checkpoint(checkpoint, 0.0)
    explain_dataset(entry_point("from_checkpoint"), images, out, "deep", **settings)
    (out / "index" / "chunk-00000003.parquet").unlink()  # a job stopped before its last chunk
    (out / "index.parquet").unlink()
    save_checkpoint(checkpoint, 0.5)
    with pytest.raises(JobMismatchError, match="weights differ"):
        explain_dataset(entry_point("from_checkpoint"), images, out, "deep", **settings)
    assert not (out / "index" / "chunk-00000003.parquet").exists()
    save_checkpoint(checkpoint, 0.0)  # the original weights resume
    assert explain_dataset(entry_point("from_checkpoint"), images, out, "deep", **settings).n_images == 16


def test_a_failed_first_run_leaves_no_store_in_the_way(tmp_path: Path) -> None:
    out, images = tmp_path / "out", digits(8)
    with pytest.raises(ValueError, match="only 3 outputs"):
        explain_dataset(jobs_models.tiny_cnn(), images, out, "deep", outputs=5, background=4, quiet=True)
    result = explain_dataset(jobs_models.tiny_cnn(), images, out, "deep", outputs=2, background=4, quiet=True)
    assert (result.n_images, result.n_errors) == (8, 0)


def test_rerunning_a_finished_job_does_not_load_the_model(tmp_path: Path) -> None:
    out, images = tmp_path / "out", digits(8)
    settings = {"background": 4, "batch_size": 4, "quiet": True}
    explain_dataset(entry_point("counted_tiny_cnn"), images, out, "deep", **settings)
    builds = jobs_models.BUILDS["counted_tiny_cnn"]
    again = explain_dataset(entry_point("counted_tiny_cnn"), images, out, "deep", **settings)
    assert jobs_models.BUILDS["counted_tiny_cnn"] == builds
    assert (again.n_images, again.n_explained_now) == (8, 0)


def run_cli(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    """``deepshap explain ARGUMENTS`` in this process: the exit status, and stderr then stdout."""
    from deepshap.cli import main

    try:
        status = main(["explain", "--explainer", "deep", "--quiet", "--report", "0", *arguments])
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.err + captured.out


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "digits.npy"
    np.save(path, digits(8))
    return path


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (["--model", "{tmp}/none.keras"], 1, "none.keras'?: no such file"),
        (["--model", "no_such_module_xyz:build"], 1, "no module 'no_such_module_xyz'"),
        (["--class-names", "{tmp}/names.txt"], 2, "--class-names .*names.txt: no such file"),
        (["--background", "{tmp}/bg.npy"], 1, "--background .*bg.npy: no such file"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, npy: Path, arguments: list[str], status: int,
    message: str,
) -> None:  # fmt: skip
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    model = [] if "--model" in arguments else ["--model", entry_point("tiny_cnn")]
    code, err = run_cli(capsys, *model, "--data", str(npy), "--out", str(tmp_path / "out"), *arguments)
    assert code == status
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_too_few_class_names_and_another_jobs_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, npy: Path
) -> None:
    names = tmp_path / "names.txt"
    names.write_text("zero\none\n")
    common = ["--model", entry_point("tiny_cnn"), "--data", str(npy), "--out", str(tmp_path / "out")]
    code, err = run_cli(capsys, *common, "--class-names", str(names))
    assert code == 1 and "2 class names for a model of 3 outputs" in err
    assert run_cli(capsys, *common, "--background", "4")[0] == 0
    code, err = run_cli(capsys, *common, "--background", "5")
    assert code == 2 and "holds the results of another job" in err and "usage:" not in err


def test_a_pickled_torch_model_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pth"
    torch.save(jobs_models.tiny_cnn(), path)
    with pytest.raises(ValueError, match="pickled models are refused.*MODULE:FUNCTION"):
        explain_dataset(str(path), digits(4), tmp_path / "out", "gradient", background=2, quiet=True)


def test_a_npy_file_reaches_the_model_as_writable_arrays(npy: Path) -> None:
    from deepshap.jobs.data import open_source

    source = open_source(npy)
    chunks = list(source.items(4, set()))
    assert [item.images.flags.writeable for item in chunks] == [True, True]
    assert np.array_equal(np.concatenate([item.images for item in chunks]), np.load(npy))
    assert source.sample(3, 0).flags.writeable


def test_a_npy_file_changed_in_rows_not_sampled_before_is_another_job(tmp_path: Path) -> None:
    from deepshap.jobs import JobMismatchError
    from deepshap.jobs.data import NpyRows

    path, images = tmp_path / "digits.npy", digits(96)
    np.save(path, images)
    settings = {"background": np.ones((2, 1, 8, 8), np.float32), "batch_size": 32, "quiet": True}
    explain_dataset(jobs_models.tiny_cnn(), path, tmp_path / "out", "deep", **settings)
    images[30] += 1.0  # neither the first, middle nor last row
    np.save(path, images)
    assert np.array_equal(NpyRows(path)[29:31], images[29:31])
    assert np.array_equal(NpyRows(path)[np.array([95, 3])], images[[95, 3]])
    (tmp_path / "out" / "index" / "chunk-00000002.parquet").unlink()
    with pytest.raises(JobMismatchError, match="data"):
        explain_dataset(jobs_models.tiny_cnn(), path, tmp_path / "out", "deep", **settings)


def test_actors_and_threads_reach_the_ray_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], npy: Path
) -> None:
    import sys
    import types

    from deepshap.jobs.engines.local import LocalEngine

    made: list[dict] = []

    class RecordingEngine(LocalEngine):
        def __init__(self, **options: object) -> None:
            super().__init__()
            made.append(options)

    module = types.ModuleType("deepshap.jobs.engines.ray_engine")
    module.RayEngine = RecordingEngine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deepshap.jobs.engines.ray_engine", module)
    common = ["--model", entry_point("tiny_cnn"), "--data", str(npy), "--background", "4"]
    status, _ = run_cli(
        capsys, *common, "--out", str(tmp_path / "a"), "--engine", "ray", "--actors", "3",
        "--threads-per-actor", "2",
    )  # fmt: skip
    assert status == 0 and made == [{"address": None, "num_actors": 3, "threads_per_actor": 2}]
    status, err = run_cli(capsys, *common, "--out", str(tmp_path / "b"), "--actors", "3")
    assert status == 0 and "apply to --engine ray only" in err and len(made) == 1
    with pytest.warns(UserWarning, match="local engine ignores them"):
        explain_dataset(
            jobs_models.tiny_cnn(), npy, tmp_path / "c", "deep", background=4, quiet=True, actors=2
        )


def test_float16_gap_is_that_of_the_stored_values(tmp_path: Path) -> None:
    result = explain_dataset(
        jobs_models.tiny_cnn(), digits(8) * 40, tmp_path / "out", "deep", background=4, quiet=True,
        dtype="float16",
    )  # fmt: skip
    job = open_job(result.out)
    values = job.values()[:].astype(np.float64)
    for row in job.index().to_pylist():
        sums = values[row["position"]].reshape(-1, values.shape[-1]).sum(axis=0)
        expected = np.abs(sums - (np.asarray(row["fx"]) - np.asarray(row["base_values"]))).max()
        assert row["gap"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_commits_sync_the_folders_they_rename_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced: list[str] = []
    fsync = os.fsync

    def recording(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording)
    out = tmp_path / "out"
    explain_dataset(jobs_models.tiny_cnn(), digits(8), out, "deep", background=4, batch_size=4, quiet=True)
    folders = {
        str(out),
        str(out / "index"),
        str(out / "values.zarr" / "c"),
        str(out / "values.zarr" / "c" / "1"),
    }
    assert folders <= set(synced)
    assert str(out / "index.parquet.tmp") in synced


def test_row_lookups_read_one_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    explain_dataset(jobs_models.tiny_cnn(), digits(12), out, "deep", background=4, batch_size=4, quiet=True)
    job = open_job(out)
    everything = job.index().to_pylist()
    (out / "index.parquet").write_bytes(b"not read for a position")
    (out / "index" / "chunk-00000000.parquet").rename(tmp_path / "away.parquet")  # nor is this
    assert job.row(9) == everything[9]
    (out / "index.parquet").unlink()
    assert job.row("10") == everything[10]
    assert job.load_explanation(9).values.shape == (1, 1, 8, 8, 3)
    with pytest.raises(KeyError):
        job.row(1)


def test_the_image_size_is_the_most_common_one(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from deepshap.jobs.images import to_channels_first

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((10, 12)) * 255).astype(np.uint8)).save(folder / "a-odd.png")
    for i in range(6):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / f"b{i}.png")
    result = explain_dataset(
        jobs_models.tiny_cnn(), folder, tmp_path / "out", "deep", background=3, grayscale=True,
        preprocess=to_channels_first, quiet=True,
    )  # fmt: skip
    assert (result.n_images, result.n_errors) == (7, 1)
    error = open_job(result.out).row("a-odd.png")["error"]
    assert "12x10" in error and "--image-size" in error


def test_the_summary_line_counts_explained_and_failed_images(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "data.npy"
    np.save(path, blank_at(8, [2, 6]))
    np.save(tmp_path / "bg.npy", digits(2, seed=1))
    status, output = run_cli(
        capsys, "--model", entry_point("raises_on_blank"), "--data", str(path),
        "--out", str(tmp_path / "out"), "--background", str(tmp_path / "bg.npy"),
    )  # fmt: skip
    assert status == 0 and "8 images: 6 explained, 2 failed (8 done in this run)" in output


def test_a_pt2_file_of_a_static_batch_size_says_how_to_export_it(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(jobs_models.tiny_cnn(), (torch.zeros(1, 1, 8, 8),)), str(path))
    with pytest.raises((RuntimeError, ValueError), match="dynamic batch dimension"):
        explain_dataset(str(path), digits(8), tmp_path / "out", "gradient", background=4, quiet=True)
    assert not (tmp_path / "out").exists()
