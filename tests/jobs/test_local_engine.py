"""The local engine: every item once, in order, errors from any of its three threads raised, and what was
explained before an error committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from deepshap.jobs.engine import ChunkResult, WorkItem
from deepshap.jobs.engines.local import LocalEngine


def items(n: int, fail_at: int | None = None) -> Iterator[WorkItem]:
    for chunk in range(n):
        if chunk == fail_at:
            raise OSError("disk gone while reading")
        yield WorkItem(chunk, [f"{chunk}-a", f"{chunk}-b"], np.full((2, 3), chunk, np.float32))


class EchoWorker:
    """Returns the images as values; raises on chunk ``fail_at``; records the threads it ran in."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def __call__(self, item: WorkItem) -> ChunkResult:
        self.threads.add(threading.current_thread().name)
        if item.chunk == self.fail_at:
            raise RuntimeError("model failed")
        rows = [{"id": i, "error": None} for i in item.ids]
        return ChunkResult(item.chunk, item.images[..., None], rows)


class Progress:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def test_every_item_committed_once_in_order() -> None:
    committed: list[int] = []
    worker, progress = EchoWorker(), Progress()
    commit_threads: set[str] = set()

    def commit(result: ChunkResult) -> None:
        commit_threads.add(threading.current_thread().name)
        assert np.all(result.values == result.chunk)
        committed.append(result.chunk)

    LocalEngine().run(items(25), lambda: worker, commit, progress)
    assert committed == list(range(25)) and progress.n == 50
    assert worker.threads == {threading.current_thread().name}  # the model stays in the calling thread
    assert commit_threads == {"deepshap-writer"}


def test_a_worker_error_is_raised_after_committing_what_was_done() -> None:
    committed: list[int] = []
    with pytest.raises(RuntimeError, match="model failed"):
        LocalEngine().run(
            items(10), lambda: EchoWorker(fail_at=4), lambda r: committed.append(r.chunk), Progress()
        )
    assert committed == [0, 1, 2, 3]


def test_a_reader_error_is_raised_in_the_caller() -> None:
    committed: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        LocalEngine().run(items(10, fail_at=3), EchoWorker, lambda r: committed.append(r.chunk), Progress())
    assert committed == [0, 1, 2]


def test_a_commit_error_stops_the_job() -> None:
    explained: list[int] = []

    class Counting(EchoWorker):
        def __call__(self, item: WorkItem) -> ChunkResult:
            explained.append(item.chunk)
            return super().__call__(item)

    def commit(result: ChunkResult) -> None:
        if result.chunk == 2:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        LocalEngine().run(items(100), Counting, commit, Progress())
    assert len(explained) < 10, "the engine must stop soon after the writer fails"
