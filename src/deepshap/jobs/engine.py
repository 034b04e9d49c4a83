"""The contract between a job and the engine that runs it.

A job is a stream of :class:`WorkItem` (one store chunk of decoded images each). An engine hands every item
to a worker built by ``make_worker`` (on the driver for the local engine, once per actor for Ray) and
passes each :class:`ChunkResult` to ``commit`` in the driver process. ``commit`` is idempotent per chunk,
so an engine that retries a chunk (a Ray task on a lost worker) still writes it exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

import numpy as np


@dataclass(frozen=True)
class WorkItem:
    """One chunk of images to explain: images ``chunk * chunk_size`` onwards of the dataset."""

    chunk: int
    ids: list[str]
    """The ids (paths, or indices as strings) of every image of the chunk, failed ones included."""
    images: np.ndarray
    """``(n_ok, *input_shape)`` decoded, preprocessed images, in ``ids`` order without the failed ones."""
    errors: dict[str, str] = field(default_factory=dict)
    """id -> why the image could not be read; those images are not in ``images``."""


class RowFields(TypedDict, total=False):
    """The explained columns of an image's index row: None where the image failed (``error`` says why)
    or could not be read."""

    classes: list[int] | None
    class_names: list[str] | None
    fx: list[float] | None
    base_values: list[float] | None
    gap: float | None
    seconds: float | None
    error: str | None


class IndexRow(RowFields, total=False):
    """One image's row of a job's index: its id and explained columns. ``chunk`` and ``position`` are set
    by the store when it commits the row."""

    id: str
    chunk: int
    position: int


@dataclass
class ChunkResult:
    """A worker's answer for one :class:`WorkItem`."""

    chunk: int
    values: np.ndarray
    """``(n_ok, *input_shape, R)`` attributions of the chunk's images that were read."""
    rows: list[IndexRow]
    """One index row per image of the chunk (failed ones included, with their error)."""
    model_digest: str | None = None
    """sha256 of the weights of the model that explained the chunk (None when it has none): a store
    resumed with other weights is refused, whatever engine ran the chunk."""


class ProgressLike(Protocol):
    """What an engine reports progress to (a tqdm bar fits)."""

    def update(self, n: int = 1) -> object: ...


Worker = Callable[[WorkItem], ChunkResult]


class Engine(Protocol):
    """Runs a job's work items through workers and commits their results in the driver."""

    def run(
        self,
        items: Iterable[WorkItem],
        make_worker: Callable[[], Worker],
        commit: Callable[[ChunkResult], None],
        progress: ProgressLike,
    ) -> None:
        """Explain every item and ``commit`` each result; ``progress.update(n)`` counts images done.

        ``make_worker`` is picklable (the Ray engine ships it to actors, each builds the model once).
        ``commit`` must run in the calling (driver) process only.
        """
        ...
