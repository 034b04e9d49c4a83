"""The in-process engine: reading, explaining and writing overlap in three threads.

A reader thread pulls work items (decoding images) into a small queue, the calling thread explains them
(the model stays in the thread that built it), and a writer thread commits results from another small
queue. Both queues are bounded, so memory holds a few chunks whatever the dataset's size. On an error or
Ctrl-C the results already explained are committed before the exception goes on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from enum import Enum

from deepshap.jobs.engine import ChunkResult, ProgressLike, Worker, WorkItem


class _End(Enum):
    """The end of a queue's stream."""

    DONE = "done"


_DONE = _End.DONE
QUEUE_DEPTH = 2
_POLL_SECONDS = 0.1


class LocalEngine:
    """Explains every item in this process; see the module docstring."""

    def __init__(self, prefetch: int = QUEUE_DEPTH) -> None:
        self.prefetch = prefetch

    def run(
        self,
        items: Iterable[WorkItem],
        make_worker: Callable[[], Worker],
        commit: Callable[[ChunkResult], None],
        progress: ProgressLike,
    ) -> None:
        stop = threading.Event()
        reader = _Reader(iter(items), self.prefetch, stop)  # decodes the first chunks while the model loads
        writer = _Writer(commit, progress, self.prefetch)
        try:
            worker = make_worker()
            for item in reader:
                if writer.failed():
                    break
                writer.put(worker(item))
        finally:
            stop.set()
            writer.close()  # commits what was explained, an interrupted run included
            reader.join()
        writer.raise_error()


class _Reader:
    """Iterates ``items`` in a background thread, at most ``depth`` items ahead."""

    def __init__(self, items: Iterator[WorkItem], depth: int, stop: threading.Event) -> None:
        self.queue: queue.Queue[WorkItem | BaseException | _End] = queue.Queue(depth)
        self.stop = stop
        self.thread = threading.Thread(target=self._read, args=(items,), name="deepshap-reader", daemon=True)
        self.thread.start()

    def _read(self, items: Iterator[WorkItem]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the main thread, raised there
            self._put(exc)
            return
        self._put(_DONE)

    def _put(self, value: WorkItem | BaseException | _End) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(value, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[WorkItem]:
        while True:
            value = self.queue.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value

    def join(self) -> None:
        self.thread.join()


class _Writer:
    """Commits results in a background thread; remembers the first error and then stops committing."""

    def __init__(self, commit: Callable[[ChunkResult], None], progress: ProgressLike, depth: int) -> None:
        self.commit = commit
        self.progress = progress
        self.queue: queue.Queue[ChunkResult | _End] = queue.Queue(depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name="deepshap-writer", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        while True:
            result = self.queue.get()
            if result is _DONE:
                return
            if self.error is not None:
                continue
            try:
                self.commit(result)
                self.progress.update(len(result.rows))
            except BaseException as exc:
                self.error = exc

    def failed(self) -> bool:
        return self.error is not None

    def put(self, result: ChunkResult | _End) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(result, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(_DONE)
        self.thread.join()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
