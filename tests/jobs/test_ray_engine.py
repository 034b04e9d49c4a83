"""The Ray engine on a local cluster that can only talk over loopback.

One cluster serves the whole module: :func:`run_scenarios` runs inside a network (and PID) namespace of its
own (``deepshap.jobs._loopback``), starts Ray there, runs every job, records what each test checks, and
stops Ray. The tests below read those records. Ray is never started outside such a namespace.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")
torch = pytest.importorskip("torch")

from deepshap.jobs import _loopback  # noqa: E402
from deepshap.jobs.engine import ChunkResult, WorkItem  # noqa: E402
from tests.helpers.paths import child_environment  # noqa: E402

N_CHUNKS, CHUNK_SIZE, INPUT_SHAPE, N_CLASSES = 12, 4, (1, 8, 8), 3
KILL_CHUNKS, KILL_AFTER_COMMITS, KILL_DELAY_S = 16, 3, 0.25
MAX_IN_FLIGHT = 3
SCENARIO_TIMEOUT_S = 420


# --- what runs on the cluster -------------------------------------------------------------------------


def tiny_cnn() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, N_CLASSES),
    ).eval()


def dataset_images() -> np.ndarray:
    return np.random.default_rng(1).random((N_CHUNKS * CHUNK_SIZE, *INPUT_SHAPE), dtype=np.float32)


def work_items(images: np.ndarray) -> list[WorkItem]:
    return [
        WorkItem(
            chunk=k,
            ids=[str(i) for i in range(k * CHUNK_SIZE, (k + 1) * CHUNK_SIZE)],
            images=images[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE],
        )
        for k in range(len(images) // CHUNK_SIZE)
    ]


class TinyDeepWorker:
    """DeepExplainer on :func:`tiny_cnn`, all classes; ``delay_s`` slows each chunk (to kill mid-job)."""

    def __init__(self, delay_s: float) -> None:
        import deepshap

        background = np.random.default_rng(2).random((6, *INPUT_SHAPE), dtype=np.float32)
        self.explainer = deepshap.DeepExplainer(tiny_cnn(), torch.from_numpy(background))
        self.delay_s = delay_s

    def __call__(self, item: WorkItem) -> ChunkResult:
        time.sleep(self.delay_s)
        values = np.asarray(self.explainer(torch.from_numpy(item.images)).values, dtype=np.float32)
        rows = [{"id": image_id, "pid": os.getpid()} for image_id in item.ids]
        return ChunkResult(item.chunk, values, rows)


@dataclass(frozen=True)
class MakeTinyDeepWorker:
    """The picklable ``make_worker``: notes each build in ``pid_dir``, a file per process, a line a build."""

    pid_dir: str
    delay_s: float = 0.0

    def __call__(self) -> TinyDeepWorker:
        with Path(self.pid_dir, str(os.getpid())).open("a") as builds:
            builds.write("built\n")
        return TinyDeepWorker(self.delay_s)


@dataclass(frozen=True)
class MakeEchoWorker:
    """A ``make_worker`` with no model: each image's values are the image itself (one output)."""

    def __call__(self) -> Any:
        def echo(item: WorkItem) -> ChunkResult:
            return ChunkResult(item.chunk, item.images[..., None], [{"id": i} for i in item.ids])

        return echo


def items_then_error(items: list[WorkItem]) -> Any:
    yield from items
    raise ValueError("the reader broke")


class Recorder:
    """``commit`` and ``progress`` of a job: every call, in order, and how far ahead the items were read."""

    def __init__(self) -> None:
        self.taken = 0
        self.most_ahead = 0
        self.commits: list[int] = []
        self.values: dict[int, np.ndarray] = {}
        self.ids: dict[int, list[str]] = {}
        self.result_pids: set[int] = set()
        self.images_done = 0

    def lazily(self, items: list[WorkItem]) -> Any:
        for item in items:
            self.taken += 1
            yield item

    def commit(self, result: ChunkResult) -> None:
        self.most_ahead = max(self.most_ahead, self.taken - len(self.commits))
        self.commits.append(result.chunk)
        self.values[result.chunk] = result.values
        self.ids[result.chunk] = [row["id"] for row in result.rows]
        self.result_pids.update(row["pid"] for row in result.rows if "pid" in row)

    def update(self, n: int = 1) -> None:
        self.images_done += n

    def stacked(self) -> np.ndarray:
        return np.concatenate([self.values[k] for k in sorted(self.values)])

    def record(self, pid_dir: Path) -> dict[str, Any]:
        pids = sorted(int(p.name) for p in pid_dir.iterdir())
        builds = [len(p.read_text().splitlines()) for p in pid_dir.iterdir()]
        return {
            "commits": self.commits,
            "images_done": self.images_done,
            "pids": pids,
            "builds_per_process": sorted(set(builds)),
            "result_pids": sorted(self.result_pids),
            "ids": self.ids,
            "most_ahead": self.most_ahead,
        }


class Auditor(threading.Thread):
    """Samples the namespace's interfaces and sockets every 0.1 s while a job runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.samples: list[_loopback.NetworkAudit] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(_loopback.network_audit())
            time.sleep(0.1)


def _kill_one_actor_mid_job(recorder: Recorder, pid_dir: Path, record: dict[str, Any]) -> None:
    while len(recorder.commits) < KILL_AFTER_COMMITS:
        time.sleep(0.02)
    victim = min(int(p.name) for p in pid_dir.iterdir())
    record["killed_after_commits"] = len(recorder.commits)
    os.kill(victim, signal.SIGKILL)
    record["killed"] = victim


def _ray_processes() -> list[str]:
    """Command lines of this PID namespace's Ray processes (raylet, GCS, workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if any(name in cmdline for name in ("raylet", "gcs_server", "ray::", "default_worker")):
            found.append(cmdline[:120])
    return found


def run_scenarios(out_dir: str) -> None:
    """Inside the loopback namespace: start Ray, run every job, write what the tests check to out_dir."""
    from deepshap.jobs.engines.ray_dataset import work_items_from_ray_dataset
    from deepshap.jobs.engines.ray_engine import RayEngine

    out = Path(out_dir)
    torch.set_num_threads(1)
    images = dataset_images()
    items = work_items(images)
    local = TinyDeepWorker(0.0)
    expected = np.concatenate([local(item).values for item in items])
    records: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {"expected": expected}

    # 3 CPUs: two 1-CPU actors, and one for the Ray Dataset scenario's read tasks.
    ray = _loopback.start_local_ray(num_cpus=3)
    try:
        records["node_ips"] = sorted({node["NodeManagerAddress"] for node in ray.nodes()})
        engine = RayEngine(num_actors=2, threads_per_actor=1, max_in_flight=MAX_IN_FLIGHT)

        job, auditor, pid_dir = Recorder(), Auditor(), out / "pids-equal"
        pid_dir.mkdir()
        auditor.start()
        engine.run(job.lazily(items), MakeTinyDeepWorker(str(pid_dir)), job.commit, job)
        auditor.stop.set()
        auditor.join()
        records["equal"] = job.record(pid_dir)
        arrays["equal"] = job.stacked()
        records["audit"] = {
            "samples": len(auditor.samples),
            "interfaces": sorted({name for s in auditor.samples for name in s.addresses}),
            "most_connections": max(s.connections for s in auditor.samples),
            "foreign": sorted({f for s in auditor.samples for f in s.foreign()}),
        }

        job, pid_dir, record = Recorder(), out / "pids-kill", {}
        pid_dir.mkdir()
        killer = threading.Thread(target=_kill_one_actor_mid_job, args=(job, pid_dir, record), daemon=True)
        killer.start()
        kill_items = work_items(np.concatenate([images, images[: (KILL_CHUNKS - N_CHUNKS) * CHUNK_SIZE]]))
        engine.run(kill_items, MakeTinyDeepWorker(str(pid_dir), KILL_DELAY_S), job.commit, job)
        killer.join(timeout=1)
        records["kill"] = {**job.record(pid_dir), **record}
        arrays["kill"] = job.stacked()

        job, pid_dir = Recorder(), out / "pids-dataset"
        pid_dir.mkdir()
        rows = [{"name": f"img-{i:03d}", "image": image} for i, image in enumerate(images)]
        dataset = ray.data.from_items(rows)
        dataset_items = work_items_from_ray_dataset(
            dataset, CHUNK_SIZE, image_column="image", id_column="name"
        )
        engine.run(dataset_items, MakeTinyDeepWorker(str(pid_dir)), job.commit, job)
        records["dataset"] = job.record(pid_dir)
        arrays["dataset"] = job.stacked()

        job = Recorder()
        try:
            RayEngine(num_actors=1).run(items_then_error(items[:2]), MakeEchoWorker(), job.commit, job)
            records["reader_error"] = {"raised": None}
        except ValueError as error:
            records["reader_error"] = {"raised": str(error), "commits": job.commits}
    finally:
        ray.shutdown()
    deadline = time.monotonic() + 20
    while _ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    records["left_after_shutdown"] = _ray_processes()
    np.savez(out / "values.npz", **arrays)
    (out / "records.json").write_text(json.dumps(records))


# --- the tests ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("ray-scenarios")
    env = child_environment(RAY_USAGE_STATS_ENABLED="0")
    try:
        done = _loopback.call_isolated(
            f"{__name__}:run_scenarios", str(out), timeout=SCENARIO_TIMEOUT_S, env=env
        )
    except _loopback.LoopbackUnavailable as error:
        pytest.fail(f"cannot isolate the Ray cluster on loopback: {error}")
    assert done.returncode == 0, f"scenarios failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    records = json.loads((out / "records.json").read_text())
    with np.load(out / "values.npz") as values:
        return records, dict(values)


def test_two_actors_give_the_local_loops_values(scenarios: Any) -> None:
    records, values = scenarios
    job = records["equal"]
    assert values["equal"].shape == (N_CHUNKS * CHUNK_SIZE, *INPUT_SHAPE, N_CLASSES)
    np.testing.assert_array_equal(values["equal"], values["expected"])
    assert sorted(job["commits"]) == list(range(N_CHUNKS))  # each chunk committed once
    assert job["images_done"] == N_CHUNKS * CHUNK_SIZE
    assert job["builds_per_process"] == [1]  # each actor built its worker once, whatever it explained
    # the pool's actors (one may start after the other has done the work on a busy machine)
    assert 1 <= len(job["result_pids"]) <= 2 and set(job["result_pids"]) <= set(job["pids"])
    assert job["ids"]["0"] == ["0", "1", "2", "3"]
    # items are read lazily: at most max_in_flight sent and uncommitted, plus one waiting for a slot
    assert job["most_ahead"] <= MAX_IN_FLIGHT + 1


def test_killed_actor_job_completes_with_every_image_once(scenarios: Any) -> None:
    records, values = scenarios
    job = records["kill"]
    assert job["killed"] in job["pids"]
    assert job["killed_after_commits"] < KILL_CHUNKS  # killed mid-job
    assert len(job["pids"]) >= 3  # the killed actor was replaced by a new process
    assert job["builds_per_process"] == [1]
    assert sorted(job["commits"]) == list(range(KILL_CHUNKS))
    assert job["images_done"] == KILL_CHUNKS * CHUNK_SIZE
    np.testing.assert_array_equal(values["kill"][: N_CHUNKS * CHUNK_SIZE], values["expected"])
    np.testing.assert_array_equal(
        values["kill"][N_CHUNKS * CHUNK_SIZE :], values["expected"][: 4 * CHUNK_SIZE]
    )


def test_ray_dataset_input(scenarios: Any) -> None:
    records, values = scenarios
    job = records["dataset"]
    np.testing.assert_array_equal(values["dataset"], values["expected"])
    assert sorted(job["commits"]) == list(range(N_CHUNKS))
    assert job["ids"]["2"] == [f"img-{i:03d}" for i in range(8, 12)]


def test_every_connection_stays_on_loopback(scenarios: Any) -> None:
    records, _ = scenarios
    audit = records["audit"]
    assert records["node_ips"] == ["127.0.0.1"]
    assert audit["interfaces"] == ["lo"]
    assert audit["samples"] >= 3
    assert audit["most_connections"] >= 10, "the audit saw too few connections: it watched nothing"
    assert audit["foreign"] == []


def test_no_ray_process_outlives_the_cluster(scenarios: Any) -> None:
    records, _ = scenarios
    assert records["left_after_shutdown"] == []


def test_a_readers_error_stops_the_job_after_committing_what_was_read(scenarios: Any) -> None:
    records, _ = scenarios
    assert records["reader_error"] == {"raised": "the reader broke", "commits": [0, 1]}


# --- without a cluster --------------------------------------------------------------------------------


def test_audit_flags_every_address_that_is_not_loopback() -> None:
    audit = _loopback.NetworkAudit(
        addresses={"lo": ["127.0.0.1", "::1"], "eth0": ["10.1.2.3"]},
        endpoints={
            ("tcp", "127.0.0.1", "0.0.0.0"),
            ("tcp6", "::ffff:127.0.0.1", "::ffff:127.0.0.1"),
            ("tcp", "127.0.0.1", "10.1.2.3"),
            ("udp6", "::", "2001:db8::1"),
        },
    )
    assert audit.foreign() == [
        "interface eth0",
        "address 10.1.2.3 on eth0",
        "tcp socket 127.0.0.1 -> 10.1.2.3",
        "udp6 socket :: -> 2001:db8::1",
    ]
    assert (
        _loopback.NetworkAudit({"lo": ["127.0.0.1", "::1"]}, {("tcp", "127.0.0.1", "0.0.0.0")}).foreign()
        == []
    )


def test_proc_net_addresses_decode() -> None:
    assert _loopback._decode_address("0100007F") == "127.0.0.1"
    assert _loopback._decode_address("0000000000000000FFFF00000100007F") == "::ffff:7f00:1"
    assert _loopback._decode_address("00000000000000000000000001000000") == "::1"


def test_the_entry_point_refuses_a_namespace_with_other_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_loopback, "interface_addresses", lambda: {"lo": ["127.0.0.1"], "eth0": ["10.0.0.5"]})
    with pytest.raises(_loopback.LoopbackUnavailable, match="eth0"):
        _loopback.main(["os:getcwd"])
    with pytest.raises(_loopback.LoopbackUnavailable, match="10.0.0.5"):
        _loopback.start_local_ray(num_cpus=1)


def _result(chunk: int) -> bytes:
    return pickle.dumps(ChunkResult(chunk, np.zeros((1, 2, 1), np.float32), [{"id": str(chunk)}]))


def test_lost_results_are_resent_and_duplicates_dropped() -> None:
    from deepshap.jobs.engines import ray_engine

    items = [WorkItem(k, [str(k)], np.zeros((1, 2), np.float32)) for k in range(5)]
    sent: list[list[int]] = []
    committed: list[int] = []
    progress = Recorder()

    def commit(result: ChunkResult) -> None:
        committed.append(result.chunk)

    def lossy_round(round_items: Any, state: Any) -> None:
        """Sends like the feeder; loses chunk 3's result in the first round, delivers the rest twice."""
        chunks = [item.chunk for item in round_items]
        state.pending.update({item.chunk: item for item in items if item.chunk in chunks})
        sent.append(chunks)
        for chunk in chunks:
            if chunk == 3 and len(sent) == 1:
                continue
            for _ in range(2):
                ray_engine._commit_once(chunk, _result(chunk), pickle.loads, commit, progress, state)

    ray_engine._run_rounds(iter(items), lossy_round, max_rounds=3)
    assert sent == [[0, 1, 2, 3, 4], [3]]
    assert committed == [0, 1, 2, 4, 3]
    assert progress.images_done == 5


def test_a_result_lost_every_round_is_an_error_naming_the_chunk() -> None:
    from deepshap.jobs.engines import ray_engine

    def losing_round(round_items: Any, state: Any) -> None:
        for item in round_items:
            state.pending[item.chunk] = item

    items = [WorkItem(7, ["7"], np.zeros((1, 2), np.float32))]
    with pytest.raises(RuntimeError, match=r"chunks \[7\] 2 times.*rerun the job to resume"):
        ray_engine._run_rounds(iter(items), losing_round, max_rounds=2)


def test_engine_arguments_are_checked() -> None:
    from deepshap.jobs.engines.ray_engine import RayEngine

    with pytest.raises(ValueError, match="num_actors"):
        RayEngine(num_actors=0)
    with pytest.raises(ValueError, match="max_rounds"):
        RayEngine(max_rounds=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        RayEngine(max_in_flight=0)


def test_importing_deepshap_and_its_jobs_does_not_import_ray() -> None:
    code = "import sys, deepshap, deepshap.jobs, deepshap.jobs.engine; assert 'ray' not in sys.modules"
    env = child_environment()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
