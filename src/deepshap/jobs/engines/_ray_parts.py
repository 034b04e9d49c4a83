"""The pieces the Ray engine runs on the cluster: a streamed source of work items and the explaining actor.

The driver pushes pickled :class:`~deepshap.jobs.engine.WorkItem` into a bounded ``ray.util.queue.Queue``
(an actor); one read task of :class:`QueueDatasource` (0 CPUs, so it never takes a slot an explaining actor
needs, and never fused with the actors) turns each into a one-row block. Ray Data then hands the blocks to
:class:`ExplainActor` in an actor pool. This streams a driver-side iterator through Ray Data with bounded
memory: the queue blocks the driver when full, and Ray Data's backpressure blocks the read task.

Imported only by the Ray engine, so ``ray`` is needed only there.
"""

from __future__ import annotations

import os
import pickle
import queue as stdlib_queue
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from deepshap.jobs.engine import ChunkResult, WorkItem

if TYPE_CHECKING:
    from ray.data.context import DataContext
    from ray.util.queue import Queue

END_OF_STREAM = b""
"""The payload that ends the stream (a pickled item is never empty)."""
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def pack(obj: WorkItem | ChunkResult) -> bytes:
    """Pickle a work item or result (protocol 5: numpy buffers are copied once)."""
    return pickle.dumps(obj, protocol=5)


def unpack_item(payload: bytes) -> WorkItem:
    """A work item from :func:`pack`."""
    item = pickle.loads(payload)
    if not isinstance(item, WorkItem):
        raise TypeError(f"expected a pickled WorkItem, got a {type(item).__name__}.")
    return item


def unpack_result(payload: bytes) -> ChunkResult:
    """A chunk's result from :func:`pack`."""
    result = pickle.loads(payload)
    if not isinstance(result, ChunkResult):
        raise TypeError(f"expected a pickled ChunkResult, got a {type(result).__name__}.")
    return result


class QueueDatasource(Datasource):
    """A Ray Data source whose single read task yields one block per payload taken from ``queue``."""

    def __init__(self, queue: Queue, poll_seconds: float = 1.0) -> None:
        super().__init__()
        self._queue = queue
        self._poll_seconds = poll_seconds

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: DataContext | None = None
    ) -> list[ReadTask]:
        queue, poll = self._queue, self._poll_seconds

        def read() -> Iterator[pa.Table]:
            while True:
                try:
                    payload = queue.get(block=True, timeout=poll)
                except stdlib_queue.Empty:
                    continue
                if payload == END_OF_STREAM:
                    return
                chunk = unpack_item(payload).chunk
                yield pa.table(
                    {"chunk": pa.array([chunk], pa.int64()), "item": pa.array([payload], pa.binary())}
                )

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(read, metadata)]


def limit_threads(threads: int) -> None:
    """Make torch and TensorFlow in this process use ``threads`` intra-op threads.

    The environment covers libraries imported later (TensorFlow reads it when its runtime starts); torch,
    if already imported, is set directly.
    """
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


class ExplainActor:
    """A Ray Data callable class: builds the job's worker once, then explains every batch of work items.

    A batch holds pickled items (column ``item``) and comes back as their chunk numbers and pickled
    :class:`~deepshap.jobs.engine.ChunkResult` (column ``result``).
    """

    def __init__(self, make_worker: Callable[[], Callable[[WorkItem], ChunkResult]], threads: int) -> None:
        limit_threads(threads)
        self._worker = make_worker()
        limit_threads(threads)  # the model build may have imported torch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [self._worker(unpack_item(payload)) for payload in batch["item"]]
        return {
            "chunk": np.array([result.chunk for result in results], dtype=np.int64),
            "result": np.array([pack(result) for result in results], dtype=object),
        }
