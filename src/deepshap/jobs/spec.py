"""What a job is: :class:`JobSpec` (everything a worker needs) and the fingerprint that names a job.

A store remembers the fingerprint of the job that wrote it; rerunning the same job resumes it, another job
(a different model, explainer, parameter or dataset) is refused unless the user asks to overwrite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepshap._typing import InputData, JSONObject, NativeModel

EXPLAINERS = ("deep", "gradient", "partition")
DTYPES = ("float32", "float16")

# explainer options: those given to the constructor, and those given to each call
CONSTRUCTOR_OPTIONS = {
    "deep": {"batch_size"},
    "gradient": {"batch_size", "local_smoothing"},
    "partition": {"masker"},
}
CALL_OPTIONS = {
    "deep": {"check_additivity"},
    "gradient": {"nsamples"},
    "partition": {"max_evals", "batch_size", "fixed_context"},
}


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to build its explainer and explain a chunk; picklable for Ray actors
    when ``model`` is a string (entry point or file) or a picklable model."""

    model: str | Path | NativeModel
    """``"package.module:function"``, a ``.keras`` / ``.pt2`` / TorchScript file, or a model object."""
    explainer: str
    background: np.ndarray
    """Background images in the data's form (before ``preprocess``)."""
    outputs: int | None = None
    """Explain the top-``outputs`` classes of each image, or every output (None)."""
    explainer_options: dict[str, object] = field(default_factory=dict)
    seed: int = 0
    output_names: tuple[str, ...] | None = None
    preprocess: Callable[[np.ndarray], InputData] | None = None
    """Turns decoded images into model input; an entry point may return its own with the model."""

    def __post_init__(self) -> None:
        if self.explainer not in EXPLAINERS:
            raise ValueError(f"explainer must be one of {', '.join(EXPLAINERS)}; got {self.explainer!r}.")
        allowed = CONSTRUCTOR_OPTIONS[self.explainer] | CALL_OPTIONS[self.explainer]
        unknown = sorted(set(self.explainer_options) - allowed)
        if unknown:
            raise ValueError(
                f"the {self.explainer} explainer takes no option {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(allowed)) or 'none'}."
            )
        if self.outputs is not None and (isinstance(self.outputs, bool) or int(self.outputs) < 1):
            raise ValueError(
                f"outputs must be a positive number of top classes, or None; got {self.outputs!r}."
            )

    def chunk_seed(self, chunk: int) -> int:
        """The seed of one chunk: fixed by the job seed and the chunk index, so a resumed or retried chunk
        draws exactly what an uninterrupted run drew."""
        return int(np.random.SeedSequence([self.seed, chunk]).generate_state(1)[0])

    def constructor_options(self) -> dict[str, object]:
        return {k: v for k, v in self.explainer_options.items() if k in CONSTRUCTOR_OPTIONS[self.explainer]}

    def call_options(self) -> dict[str, object]:
        return {k: v for k, v in self.explainer_options.items() if k in CALL_OPTIONS[self.explainer]}


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's shape, dtype and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    digest.update(array.data.cast("B"))
    return digest.hexdigest()


def fingerprint_digest(fingerprint: JSONObject) -> str:
    """A short, stable digest of a fingerprint dictionary."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
