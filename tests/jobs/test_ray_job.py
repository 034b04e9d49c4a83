"""``deepshap explain --engine ray`` writes the store ``--engine local`` writes, bit for bit.

The Ray run starts its own local cluster (no ``--address``) inside a loopback-only namespace
(``deepshap.jobs._loopback``); Ray is never started outside one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("zarr")
pytest.importorskip("pyarrow")
pytest.importorskip("torch")

from deepshap.jobs import _loopback, open_job  # noqa: E402
from tests.helpers.jobs_models import entry_point  # noqa: E402
from tests.helpers.paths import child_environment  # noqa: E402

N_IMAGES, BATCH = 40, 8


def explain(out: Path, data: Path, engine: str) -> list[str]:
    return [
        sys.executable, "-m", "deepshap", "explain", "--model", entry_point("tiny_cnn"), "--data", str(data),
        "--explainer", "deep", "--out", str(out), "--background", "10", "--batch-size", str(BATCH),
        "--outputs", "2", "--quiet", "--report", "0", "--engine", engine,
    ]  # fmt: skip


def test_the_ray_engine_writes_the_local_engines_store(tmp_path: Path) -> None:
    data = tmp_path / "digits.npy"
    rng = np.random.default_rng(3)
    np.save(data, rng.random((N_IMAGES, 1, 8, 8), dtype=np.float32))
    env = child_environment(RAY_USAGE_STATS_ENABLED="0")
    local = subprocess.run(
        explain(tmp_path / "local", data, "local"), env=env, capture_output=True, text=True
    )
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = _loopback.run_isolated(explain(tmp_path / "ray", data, "ray"), timeout=400, env=env)
    assert on_ray.returncode == 0, on_ray.stderr[-6000:]

    first, second = open_job(tmp_path / "local"), open_job(tmp_path / "ray")
    assert first.values()[:].shape[0] == N_IMAGES
    assert first.values()[:].tobytes() == second.values()[:].tobytes()
    rows_local = first.index().drop_columns(["seconds"]).to_pylist()
    rows_ray = second.index().drop_columns(["seconds"]).to_pylist()
    assert rows_ray == rows_local and len(rows_ray) == N_IMAGES
