"""Regressions found in review: bad images, changed weights, failed first runs, arguments, durability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("torch")

import jobs_models  # noqa: E402
from jobs_models import digits  # noqa: E402

from deepshap.jobs import explain_dataset, open_job  # noqa: E402


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
