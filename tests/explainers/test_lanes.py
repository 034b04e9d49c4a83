"""run_in_lanes: work in worker threads, every model call on the calling thread, errors raised there."""

from __future__ import annotations

import threading
import time

import pytest

from deepshap.explainers._lanes import run_in_lanes


def lane_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("deepshap-lane")]


class Model:
    """Records the threads it runs on and whether two calls ever overlapped."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.threads: set[int] = set()
        self.running = 0
        self.overlapped = False
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, x: int, scale: int) -> int:
        with self.lock:
            self.running += 1
            self.overlapped |= self.running > 1
        self.threads.add(threading.get_ident())
        time.sleep(0.002)
        with self.lock:
            self.running -= 1
        if x == self.fail_on:
            raise ValueError(f"model failed on {x}")
        return x * scale


def three_calls(i: int, lane: int, call) -> tuple[int, int, list[int]]:
    return i, lane, [call(10 * i + step, 2) for step in range(3)]


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_every_item_is_worked_and_the_model_runs_on_the_calling_thread_alone(lanes):
    model = Model()
    results = dict(run_in_lanes(three_calls, 7, model, lanes))
    assert sorted(results) == list(range(7))
    for i, (item, lane, answers) in results.items():
        assert item == i and lane in range(lanes)
        assert answers == [2 * (10 * i + step) for step in range(3)]
    assert model.threads == {threading.get_ident()} and not model.overlapped
    assert not lane_threads()


def test_one_lane_runs_in_order_on_the_calling_thread():
    seen = []

    def work(i: int, lane: int, call) -> int:
        seen.append((i, threading.get_ident()))
        return call(i, 1)

    assert list(run_in_lanes(work, 4, Model(), lanes=1)) == [(i, i) for i in range(4)]
    assert seen == [(i, threading.get_ident()) for i in range(4)]


def test_a_model_error_is_raised_to_the_caller_and_the_lanes_stop():
    with pytest.raises(ValueError, match="model failed on 31"):
        list(run_in_lanes(three_calls, 6, Model(fail_on=31), lanes=2))
    assert not lane_threads()


def test_a_work_error_is_raised_to_the_caller_and_the_lanes_stop():
    def work(i: int, lane: int, call) -> int:
        if i == 3:
            raise KeyError("image 3")
        return call(i, 1)

    with pytest.raises(KeyError, match="image 3"):
        list(run_in_lanes(work, 8, Model(), lanes=2))
    assert not lane_threads()


def test_leaving_the_loop_early_stops_the_lanes():
    runs = run_in_lanes(three_calls, 10, Model(), lanes=2)
    next(runs)
    runs.close()
    assert not lane_threads()


def test_a_free_lane_takes_the_next_item_while_another_is_busy():
    """Items go to whichever lane is free: item 0 can wait for items 1-3 without holding any of them."""
    others_done = threading.Event()
    done = set()

    def work(i: int, lane: int, call) -> bool:
        if i == 0:
            return others_done.wait(timeout=10)
        call(i, 1)
        done.add(i)
        if done == {1, 2, 3}:
            others_done.set()
        return True

    assert all(result for _, result in run_in_lanes(work, 4, Model(), lanes=2))


def test_a_lane_that_cannot_start_leaves_none_running(monkeypatch):
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name == "deepshap-lane-1":
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(RuntimeError, match="can't start"):
        list(run_in_lanes(three_calls, 4, Model(), lanes=2))
    assert not lane_threads()
