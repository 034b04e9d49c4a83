"""The benchmark harness and runner, exercised with trivial callables and a fake clock."""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))  # the bench files import the harness as a top-level module

import harness  # noqa: E402
import run as bench_run  # noqa: E402


def fake_clock(durations: list[float]) -> Iterator[float]:
    """A clock whose consecutive (start, stop) readings are ``durations`` apart."""
    now = 0.0
    for duration in durations:
        yield now
        now += duration
        yield now


def counter() -> tuple[list[int], harness.Work]:
    calls: list[int] = []
    return calls, lambda: calls.append(1)


def test_best_time_warms_up_once_and_keeps_the_fastest_run() -> None:
    calls, work = counter()
    clock = fake_clock([0.5, 0.2, 0.3])
    assert harness.best_time(work, 3, clock=lambda: next(clock)) == pytest.approx(0.2)
    assert len(calls) == 4  # one warm-up and three timed runs


def test_deepshap_and_its_floor_take_turns() -> None:
    order: list[str] = []
    case = harness.Case("toy", deepshap=lambda: order.append("d"), floor=lambda: order.append("f"))
    clock = fake_clock([0.3, 0.1, 0.2, 0.4])
    result = harness.run_case(case, repeats=2, clock=lambda: next(clock))
    assert order == ["d", "f", "d", "f", "d", "f"]  # warm-ups, then turns
    assert (result.deepshap_s, result.floor_s) == (pytest.approx(0.2), pytest.approx(0.1))


def test_best_time_refuses_a_set_up_factory_in_place_of_the_work() -> None:
    def factory() -> harness.Work:
        return lambda: None

    with pytest.raises(TypeError, match="set-up factory"):
        harness.best_time(factory, 3)


def test_best_time_rejects_zero_repeats() -> None:
    with pytest.raises(ValueError, match="repeats"):
        harness.best_time(lambda: None, 0)


def test_run_case_ratios_and_failing_rival() -> None:
    def broken_shap() -> None:
        raise LookupError("gradient registry has no entry for: shap_LeakyRelu\nmore")

    case = harness.Case("toy", deepshap=lambda: None, floor=lambda: None, shap=broken_shap, note="n")
    clock = fake_clock([2.0, 0.5])  # deepshap 2.0 s, floor 0.5 s (one repeat each)
    result = harness.run_case(case, repeats=1, clock=lambda: next(clock))
    assert result.deepshap_s == 2.0 and result.floor_s == 0.5 and result.over_floor == 4.0
    assert result.shap_s is None and result.captum_s is None and result.shap_speedup is None
    assert result.errors == {"shap": "LookupError: gradient registry has no entry for: shap_LeakyRelu"}
    text = harness.format_row(result)
    assert "fails" in text.splitlines()[0] and "shap fails: LookupError" in text and "note: n" in text


def test_run_case_times_shap_and_captum_against_deepshap() -> None:
    case = harness.Case("toy", lambda: None, lambda: None, shap=lambda: None, captum=lambda: None)
    clock = fake_clock([0.1, 0.05, 1.0, 0.3])
    result = harness.run_case(case, repeats=1, clock=lambda: next(clock))
    assert result.shap_speedup == pytest.approx(10.0) and result.captum_speedup == pytest.approx(3.0)
    row = harness.format_row(result)
    assert row.split() == ["toy", "0.1", "0.05", "2", "1", "10", "0.3", "3"]
    assert harness.header().split()[:3] == ["case", "deepshap", "s"]


def test_failing_deepshap_fails_the_case() -> None:
    def broken() -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        harness.run_case(harness.Case("toy", deepshap=broken, floor=lambda: None), repeats=1)


def test_ratio_of_an_unmeasurably_fast_floor_is_infinite() -> None:
    assert harness.ratio(1.0, 0.0) == math.inf


def test_peak_rss_sees_a_large_allocation(tmp_path: Path) -> None:
    target = tmp_path / "alloc.py"
    target.write_text(
        textwrap.dedent(
            """
            def allocate(megabytes):
                block = bytearray(megabytes * 2**20)
                block[::4096] = b"x" * len(block[::4096])  # touch every page
                return len(block)
            """
        )
    )
    small = harness.peak_rss_mb(f"{target}:allocate", 1)
    large = harness.peak_rss_mb(f"{target}:allocate", 300)
    assert 250 < large - small < 400
    with pytest.raises(RuntimeError, match="failed in the memory subprocess"):
        harness.peak_rss_mb(f"{target}:missing")
    with pytest.raises(ValueError, match="module:function"):
        harness.peak_rss_mb("no_colon")


@pytest.fixture(autouse=True)
def no_global_allocator_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's allocator setting would hold for the rest of the test session: skip it here."""
    monkeypatch.setattr(bench_run, "steady_allocator", lambda: False)


def test_steady_allocator_keeps_freed_memory_for_the_next_allocation(tmp_path: Path) -> None:
    """In a fresh process: a freed 64 MB block is reused without faulting its pages in again."""
    script = tmp_path / "faults.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import resource, sys
            sys.path.insert(0, {str(BENCHMARKS)!r})
            import numpy as np
            import harness

            def faults_of_a_fresh_block():
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                block = np.empty(64 * 2**20, dtype=np.uint8)
                block[::4096] = 1
                del block
                return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

            faults_of_a_fresh_block()
            default = faults_of_a_fresh_block()  # glibc gave the block back: its pages fault again
            assert harness.steady_allocator()
            faults_of_a_fresh_block()
            print(default, faults_of_a_fresh_block())
            """
        )
    )
    import subprocess

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    default, steady = map(int, out.split())
    assert default >= 32 and steady <= default // 10  # >= 32: 2 MB pages when the kernel uses them


@pytest.fixture(autouse=True)
def no_global_thread_change(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runner's thread limit would leak into the rest of the test session; record it instead."""
    asked: list[int] = []
    monkeypatch.setattr(bench_run, "limit_threads", asked.append)
    return asked


def test_limit_threads_sets_every_library(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")

    before = torch.get_num_threads()
    for name in harness.THREAD_ENV_VARS:
        # setenv, not delenv: monkeypatch restores only what it changed, and a delenv of a variable that
        # is not set changes nothing, so the limit would stay for every later test (TensorFlow reads it
        # when its runtime starts)
        monkeypatch.setenv(name, "7")
    try:
        harness.limit_threads(1)
        assert torch.get_num_threads() == 1
        assert all(harness.os.environ[name] == "1" for name in harness.THREAD_ENV_VARS)
    finally:
        torch.set_num_threads(before)


def write_bench(directory: Path) -> None:
    (directory / "bench_toy.py").write_text(
        textwrap.dedent(
            """
            from harness import Case

            def cases():
                return [
                    Case("alpha", deepshap=lambda: None, floor=lambda: None, repeats=1),
                    Case("beta", deepshap=lambda: None, floor=lambda: None, repeats=1),
                ]
            """
        )
    )


def test_runner_discovers_filters_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_global_thread_change: list[int]
) -> None:
    write_bench(tmp_path)
    assert bench_run.main(["-k", "beta", "--threads", "1"], directory=tmp_path) == 0
    assert no_global_thread_change == [1]
    out = capsys.readouterr().out
    assert "CPUs" in out and "shap" in out and "1 threads per library" in out
    assert "bench_toy" in out and "beta" in out and "alpha" not in out
    assert bench_run.main(["-k", "bench_toy", "--repeats", "1"], directory=tmp_path) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "beta" in out


def test_runner_fails_when_nothing_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bench(tmp_path)
    assert bench_run.main(["-k", "gamma"], directory=tmp_path) == 1
    assert "no benchmark cases matching -k 'gamma'" in capsys.readouterr().err


def test_runner_reports_a_failing_case_and_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bench_bad.py").write_text(
        "from harness import Case\n\n"
        "def boom():\n    raise ValueError('broken explainer')\n\n"
        "def cases():\n    return [Case('bad', deepshap=boom, floor=lambda: None, repeats=1)]\n"
    )
    assert bench_run.main([], directory=tmp_path) == 1
    captured = capsys.readouterr()
    assert "bad" in captured.out and "FAILED" in captured.out and "broken explainer" in captured.err
