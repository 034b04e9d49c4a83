"""The Ray engine: a dataset job on Ray Data, with an actor pool that builds the model once per actor.

The driver streams the job's work items into Ray Data (see :mod:`._ray_parts`); ``map_batches`` with a
callable class runs them on ``num_actors`` actors (``threads_per_actor`` CPUs each, and one GPU each where
the cluster has GPUs); the results stream back to the driver, which commits each chunk once.

Exactly once: Ray Data restarts an actor that dies and retries its batches (``max_restarts=-1``,
``max_task_retries=-1``), so a result may arrive twice; the driver commits the first and drops the rest.
The driver also keeps every item it sent until its result is committed: an item whose result never came
(lost with a read task's worker) is sent again in a second round, so the job completes or names what failed.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from deepshap.jobs.engine import ChunkResult, ProgressLike, Worker, WorkItem

if TYPE_CHECKING:
    from ray.util.queue import Queue

QUEUE_POLL_SECONDS = 0.5


@dataclass
class _Stream:
    """Book-keeping of one run: items sent and not yet committed, chunks committed, a feeder's error."""

    pending: dict[int, WorkItem] = field(default_factory=dict)
    committed: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    slots: threading.Semaphore = field(default_factory=threading.Semaphore)
    """One per item the feeder may send before a result comes back (bounds memory on both sides)."""
    feed_error: BaseException | None = None


class RayEngine:
    """Runs a dataset job on a Ray cluster with Ray Data and an actor pool.

    Args:
        address: the cluster to join (``"ray://host:10001"``, ``"host:6379"`` or ``"auto"``); ``None``
            joins the cluster this process is already connected to, or starts a local one (for a local
            cluster that must stay on loopback, see :mod:`deepshap.jobs._loopback`).
        num_actors: explaining actors, each building the model once.
        threads_per_actor: CPUs each actor reserves and the torch/TensorFlow intra-op threads it uses.
        gpus_per_actor: GPUs each actor reserves; ``None`` takes 1 where the cluster has GPUs, else 0.
        max_in_flight: work items sent and not yet committed, at most (``4 * num_actors`` by default):
            this bounds the memory of the driver, which keeps them to resend, and of the object store.
        max_rounds: how many times items whose result never came back are sent again before failing.
        init_kwargs: passed to ``ray.init`` (e.g. ``num_cpus`` for a local cluster, ``runtime_env``).
    """

    def __init__(
        self,
        address: str | None = None,
        num_actors: int = 2,
        threads_per_actor: int = 1,
        gpus_per_actor: float | None = None,
        max_in_flight: int | None = None,
        max_rounds: int = 3,
        init_kwargs: Mapping[str, object] | None = None,
    ) -> None:
        if num_actors < 1 or threads_per_actor < 1:
            raise ValueError(
                f"num_actors and threads_per_actor must be >= 1, got {num_actors} and {threads_per_actor}"
            )
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self.address = address
        self.num_actors = num_actors
        self.threads_per_actor = threads_per_actor
        self.gpus_per_actor = gpus_per_actor
        self.max_in_flight = max_in_flight if max_in_flight is not None else 4 * num_actors
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        self.max_rounds = max_rounds
        self.init_kwargs = dict(init_kwargs or {})

    def run(
        self,
        items: Iterable[WorkItem],
        make_worker: Callable[[], Worker],
        commit: Callable[[ChunkResult], None],
        progress: ProgressLike,
    ) -> None:
        """Explain every item on the actor pool and ``commit`` each chunk's result once, in this process."""
        ray = _import_ray()
        with self._connected(ray):

            def run_round(round_items: Iterator[WorkItem], state: _Stream) -> None:
                self._run_round(ray, round_items, make_worker, commit, progress, state)

            _run_rounds(iter(items), run_round, self.max_rounds)

    @contextmanager
    def _connected(self, ray: ModuleType) -> Iterator[None]:
        """Join (or start) the cluster unless already connected; leave it as found."""
        if ray.is_initialized():
            yield
            return
        kwargs = dict(self.init_kwargs)
        if self.address is None and "_node_ip_address" not in kwargs and _loopback_only():
            # A local cluster in a loopback-only namespace: name its address rather than let Ray fall
            # back to resolving the host name (an address that may not exist here).
            kwargs["_node_ip_address"] = "127.0.0.1"
        ray.init(address=self.address, **kwargs)
        try:
            yield
        finally:
            ray.shutdown()

    def actor_gpus(self, ray: ModuleType) -> float:
        """GPUs per actor: as given, else 1 where the cluster has any GPU, else 0."""
        if self.gpus_per_actor is not None:
            return self.gpus_per_actor
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def _run_round(
        self,
        ray: ModuleType,
        items: Iterator[WorkItem],
        make_worker: Callable[[], Worker],
        commit: Callable[[ChunkResult], None],
        progress: ProgressLike,
        state: _Stream,
    ) -> None:
        """Stream ``items`` through one Ray Data execution and commit what comes back."""
        from ray.util.queue import Queue

        from deepshap.jobs.engines._ray_parts import ExplainActor, QueueDatasource, unpack_result

        queue = Queue(maxsize=self.num_actors, actor_options={"num_cpus": 0})
        state.stop.clear()
        state.slots = threading.Semaphore(self.max_in_flight)
        feeder = threading.Thread(
            target=_feed, args=(items, queue, state), name="deepshap-ray-feeder", daemon=True
        )
        feeder.start()
        try:
            with _streaming_context(ray):
                dataset = ray.data.read_datasource(
                    QueueDatasource(queue, QUEUE_POLL_SECONDS), num_cpus=0, override_num_blocks=1
                )
                dataset = dataset.map_batches(
                    ExplainActor,
                    fn_constructor_args=(make_worker, self.threads_per_actor),
                    batch_size=1,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=self.num_actors),
                    num_cpus=self.threads_per_actor,
                    num_gpus=self.actor_gpus(ray),
                )
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    for chunk, payload in zip(batch["chunk"], batch["result"], strict=True):
                        _commit_once(int(chunk), payload, unpack_result, commit, progress, state)
        finally:
            state.stop.set()
            feeder.join()
            queue.shutdown(force=True)
        if state.feed_error is not None:
            raise state.feed_error


def _run_rounds(
    items: Iterator[WorkItem], run_round: Callable[[Iterator[WorkItem], _Stream], None], max_rounds: int
) -> None:
    """Run ``items``, then resend those whose result never came, up to ``max_rounds`` rounds in all."""
    state = _Stream()
    run_round(items, state)
    for _ in range(1, max_rounds):
        if not state.pending:
            return
        retry, state.pending = list(state.pending.values()), {}
        run_round(iter(retry), state)
    if state.pending:
        raise RuntimeError(
            f"Ray lost the results of chunks {sorted(state.pending)} {max_rounds} times; "
            "the other chunks are committed: rerun the job to resume"
        )


def _feed(items: Iterator[WorkItem], queue: Queue, state: _Stream) -> None:
    """Feeder thread: pickle each item into the queue (waiting while it is full), then end the stream."""
    from ray.util.queue import Full

    from deepshap.jobs.engines._ray_parts import END_OF_STREAM, pack

    def put(payload: bytes) -> bool:
        while not state.stop.is_set():
            try:
                queue.put(payload, block=True, timeout=QUEUE_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def take_slot() -> bool:
        while not state.stop.is_set():
            if state.slots.acquire(timeout=QUEUE_POLL_SECONDS):
                return True
        return False

    try:
        for item in items:
            with state.lock:
                if item.chunk in state.committed:
                    continue
            if not take_slot():
                return
            with state.lock:
                state.pending[item.chunk] = item
            if not put(pack(item)):
                return
    except BaseException as error:  # noqa: BLE001 - handed to the driver thread, which raises it
        state.feed_error = error
    put(END_OF_STREAM)


def _commit_once(
    chunk: int,
    payload: bytes,
    unpack: Callable[[bytes], ChunkResult],
    commit: Callable[[ChunkResult], None],
    progress: ProgressLike,
    state: _Stream,
) -> None:
    """Commit a chunk's first result; a retried task's duplicate is dropped."""
    with state.lock:
        if chunk in state.committed:
            return
    result = unpack(payload)
    commit(result)
    with state.lock:
        state.committed.add(chunk)
        state.pending.pop(chunk, None)
    state.slots.release()
    progress.update(len(result.rows))


@contextmanager
def _streaming_context(ray: ModuleType) -> Iterator[None]:
    """Ray Data settings for the datasets created inside: every item its own block, no progress bars.

    Ray Data coalesces a task's small output blocks up to ``target_max_block_size`` (128 MiB) before
    passing them on: a read task would take items from the queue until it had that much, and the actors
    would wait. A limit of one byte makes each one-item block go downstream as soon as it is read. The
    job's own bar reports progress.
    """
    context = ray.data.DataContext.get_current()
    before = context.enable_progress_bars, context.target_max_block_size
    context.enable_progress_bars, context.target_max_block_size = False, 1
    try:
        yield
    finally:
        context.enable_progress_bars, context.target_max_block_size = before


def _loopback_only() -> bool:
    """Whether loopback is the only network of this process (see :mod:`deepshap.jobs._loopback`)."""
    from deepshap.jobs._loopback import NetworkAudit, interface_addresses

    try:
        return not NetworkAudit(addresses=interface_addresses()).foreign()
    except (OSError, subprocess.CalledProcessError):
        return False


def _import_ray() -> ModuleType:
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise ImportError(
            "the Ray engine needs Ray Data: pip install 'deepshap[ray]' (or 'ray[data]')"
        ) from error
    return ray
