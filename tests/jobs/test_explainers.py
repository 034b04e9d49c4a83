"""Each explainer through a job, models loaded from entry points and files, results loaded back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("torch")

import deepshap  # noqa: E402
from deepshap.jobs import explain_dataset, open_job, write_report  # noqa: E402
from tests.helpers.jobs_models import digits, entry_point, numpy_scorer, tiny_cnn  # noqa: E402
from tests.helpers.paths import child_environment  # noqa: E402


def test_deep_job_matches_the_explainer_called_directly(tmp_path: Path) -> None:
    images = digits(20)
    result = explain_dataset(tiny_cnn(), images, tmp_path, "deep", background=6, batch_size=8, quiet=True)
    job = open_job(tmp_path)
    from deepshap.jobs.data import ArraySource

    background = ArraySource(images).sample(6, 0)  # the job's seeded sample
    direct = deepshap.DeepExplainer(tiny_cnn(), background)(images[8:16])
    stored = job.values()[8:16]
    assert np.array_equal(stored, direct.values)
    rows = job.index().to_pylist()
    assert result.n_images == 20 and [row["position"] for row in rows] == list(range(20))
    assert rows[9]["classes"] == [0, 1, 2] and np.allclose(rows[9]["base_values"], direct.base_values[1])
    assert max(row["gap"] for row in rows) < 1e-5


def test_gradient_job_is_additive_in_expectation(tmp_path: Path) -> None:
    images = digits(8)
    explain_dataset(
        tiny_cnn(), images, tmp_path, "gradient", background=8, batch_size=8, outputs=1, quiet=True,
        explainer_options={"nsamples": 400},
    )  # fmt: skip
    rows = open_job(tmp_path).index().to_pylist()
    spread = [abs(row["fx"][0] - row["base_values"][0]) for row in rows]
    assert all(row["gap"] < 0.25 * max(spread) + 0.02 for row in rows)
    assert all(len(row["classes"]) == 1 for row in rows)


def test_partition_job_of_a_numpy_model_with_class_names(tmp_path: Path) -> None:
    images = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
    explain_dataset(
        numpy_scorer(), images, tmp_path, "partition", background=2, batch_size=4, outputs=2, quiet=True,
        explainer_options={"max_evals": 64, "masker": "blur(3,3)"}, output_names=["cat", "dog", "fish"],
    )  # fmt: skip
    job = open_job(tmp_path)
    rows = job.index().to_pylist()
    assert job.values().shape == (6, 8, 8, 1, 2)
    assert all(set(row["class_names"]) <= {"cat", "dog", "fish"} for row in rows)
    assert max(row["gap"] for row in rows) < 1e-6  # Owen values are efficient
    explanation = job.load_explanation(3)
    assert explanation.values.shape == (1, 8, 8, 1, 2)
    assert list(explanation.output_names[0]) == rows[3]["class_names"]


def test_keras_model_from_a_keras_file_with_float16(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    from tests.helpers.jobs_models import tiny_keras

    model_file = tmp_path / "model.keras"
    tiny_keras().save(model_file)
    images = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32)
    out = tmp_path / "out"
    explain_dataset(
        str(model_file), images, out, "deep", background=4, batch_size=5, dtype="float16", quiet=True
    )
    job = open_job(out)
    assert job.values().dtype == np.float16 and job.values().shape == (10, 8, 8, 1, 3)
    assert max(row["gap"] for row in job.index().to_pylist()) < 1e-4


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_torch_model_files(tmp_path: Path, kind: str) -> None:
    import torch

    model = tiny_cnn()
    if kind == "torchscript":
        path = tmp_path / "model.pt"
        torch.jit.save(torch.jit.trace(model, torch.zeros(1, 1, 8, 8)), path)
    else:
        path = tmp_path / "model.pt2"
        torch.export.save(
            torch.export.export(
                model, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim.AUTO},)
            ),
            path,
        )
    images = digits(8)
    out = tmp_path / "out"
    explain_dataset(
        str(path),
        images,
        out,
        "gradient",
        background=4,
        batch_size=8,
        quiet=True,
        explainer_options={"nsamples": 8},
    )
    reference = tmp_path / "reference"
    explain_dataset(
        model,
        images,
        reference,
        "gradient",
        background=4,
        batch_size=8,
        quiet=True,
        explainer_options={"nsamples": 8},
    )
    assert np.allclose(open_job(out).values()[:], open_job(reference).values()[:], atol=1e-6)
    with pytest.raises(ValueError, match="give the model as MODULE:FUNCTION"):
        explain_dataset(str(path), images, tmp_path / "deep", "deep", background=4, quiet=True)


def test_a_pickle_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        explain_dataset(str(path), digits(4), tmp_path / "out", "deep", background=2, quiet=True)


def test_unknown_explainer_options_name_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="takes: batch_size, local_smoothing, nsamples"):
        explain_dataset(
            tiny_cnn(), digits(4), tmp_path, "gradient", background=2, explainer_options={"max_evals": 3}
        )


def test_batches_of_unknown_length(tmp_path: Path) -> None:
    images = digits(21)
    batches = (images[i : i + 5] for i in range(0, 21, 5))
    result = explain_dataset(
        tiny_cnn(), batches, tmp_path / "a", "deep", background=5, batch_size=8, quiet=True
    )
    reference = explain_dataset(
        tiny_cnn(), images, tmp_path / "b", "deep", background=5, batch_size=8, quiet=True
    )
    assert result.n_images == 21
    assert open_job(result.out).values().shape == open_job(reference.out).values().shape


def test_cli_on_a_folder_with_report(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        pixels = (np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\n")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "deepshap", "explain", "--model", entry_point("tiny_cnn"),
        "--data", str(folder), "--explainer", "deep", "--out", str(out), "--background", "3",
        "--batch-size", "4", "--outputs", "2", "--grayscale", "--channels-first", "--class-names", str(names),
        "--report", "2", "--quiet",
    ]  # fmt: skip
    env = child_environment()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "7 images: 6 explained, 1 failed" in done.stdout
    page = (out / "report" / "index.html").read_text()
    assert page.count("<img") == 2 and "broken.png" in page
    rows = open_job(out).index().to_pylist()
    assert all(set(row["class_names"]) <= {"zero", "one", "two"} for row in rows if row["error"] is None)
    refused = subprocess.run(command[:-5] + ["--outputs", "1"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr


def test_report_from_the_api(tmp_path: Path) -> None:
    images = digits(6)
    explain_dataset(tiny_cnn(), images, tmp_path, "deep", background=3, batch_size=3, quiet=True)
    page = write_report(tmp_path, images=[0, "4"], data=np.moveaxis(images, 1, -1))
    html = page.read_text()
    assert html.count("<img") == 2 and "image-00000004.png" in html


def test_progress_bar_shows_images_per_second_unless_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    explain_dataset(tiny_cnn(), digits(8), tmp_path / "a", "deep", background=2, batch_size=4)
    shown = capsys.readouterr().err
    assert "img/s" in shown and "8/8" in shown
    explain_dataset(tiny_cnn(), digits(8), tmp_path / "b", "deep", background=2, batch_size=4, quiet=True)
    assert capsys.readouterr().err == ""
