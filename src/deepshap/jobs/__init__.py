"""Explain a whole dataset: streamed to a Zarr store and a Parquet index, resumable, local or on Ray.

``explain_dataset`` runs a job; ``open_job`` reopens its results (``load_explanation`` gives one image's
Explanation for ``image_plot``); ``write_report`` makes an HTML page of chosen images. Needs the ``jobs``
extra (zarr, pyarrow, pillow), imported only when a job runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names _PUBLIC resolves, for type checkers
    from deepshap.jobs.api import JobResult as JobResult
    from deepshap.jobs.api import explain_dataset as explain_dataset
    from deepshap.jobs.engines.ray_engine import RayEngine as RayEngine
    from deepshap.jobs.report import write_report as write_report
    from deepshap.jobs.results import JobResults as JobResults
    from deepshap.jobs.results import open_job as open_job
    from deepshap.jobs.store import JobMismatchError as JobMismatchError
    from deepshap.jobs.store import StoreWriteError as StoreWriteError

_PUBLIC = {
    "explain_dataset": "deepshap.jobs.api",
    "JobResult": "deepshap.jobs.api",
    "open_job": "deepshap.jobs.results",
    "JobResults": "deepshap.jobs.results",
    "write_report": "deepshap.jobs.report",
    "JobMismatchError": "deepshap.jobs.store",
    "StoreWriteError": "deepshap.jobs.store",
    "RayEngine": "deepshap.jobs.engines.ray_engine",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'deepshap.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
