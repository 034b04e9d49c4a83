"""The `deepshap demo` main job: a quick end-to-end run through the CLI, and the runner's failure rules."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepshap.cli import _DEMO_MODULES, build_parser, main
from deepshap.demo import DemoSectionError, SectionResult, run_demo
from deepshap.demo.sections import DemoState
from tests.helpers.paths import ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def demo_packages() -> None:
    """Skip unless the packages the demo imports are installed: without them the CLI stops first."""
    for module in _DEMO_MODULES:
        pytest.importorskip(module)


@pytest.mark.slow
@pytest.mark.usefixtures("demo_packages")
def test_quick_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "gallery"
    result = subprocess.run(
        [sys.executable, "-m", "deepshap", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    index = out / "index.html"
    assert f"Gallery: {index.resolve()}" in result.stdout
    page = index.read_text()

    for name in ("gradient_mnist.png", "deep_mnist.png", "partition_photos.png", "metrics_compare.png"):
        image = out / name
        assert image.read_bytes()[:8] == PNG_MAGIC and image.stat().st_size > 10_000, name
    referenced = re.findall(r'<img src="([^"]+)"', page)
    job_figures = [name for name in referenced if name.startswith("mnist-job/report/image-")]
    assert sorted(set(referenced) - set(job_figures)) == [
        "deep_mnist.png",
        "gradient_mnist.png",
        "metrics_compare.png",
        "partition_photos.png",
    ]
    assert len(job_figures) == 3 and all((out / name).read_bytes()[:8] == PNG_MAGIC for name in job_figures)
    assert (out / "mnist-job" / "report" / "index.html").is_file()
    job_text = re.search(r"explained (\d+) test digits.*?largest additivity gap (\d\.\de[-+]\d+)", page, re.S)
    assert int(job_text.group(1)) == 60 and float(job_text.group(2)) < 1e-4
    assert "deepshap explain --model deepshap.demo.sections:trained_cnn" in page  # the CLI ran it

    accuracy = float(re.search(r"MNIST CNN test accuracy: ([\d.]+)%", page).group(1))
    assert 50.0 < accuracy <= 100.0, "one epoch on 4000 digits reaches well above chance"
    for title in (
        "Train the seed-002 CNN",
        "GradientExplainer",
        "DeepExplainer",
        "Partition explainer",
        "metrics",
    ):
        assert title in page
    assert len(re.findall(r'<p class="time">[\d.]+ s</p>', page)) == 6
    assert re.search(r"deepshap.deep: [\d.]+% off the Shapley values", page)
    assert "espresso" in page, "EfficientNet-Lite0 calls skimage's coffee photo an espresso"
    deep_gap = float(re.search(r"DeepExplainer.*?summed attributions[^:]*: ([-\d.e+]+)", page, re.S).group(1))
    assert deep_gap < 1e-4, "DeepSHAP must be additive"
    owen_gap = float(re.search(r"base value and the model\S+ probability: ([-\d.e+]+)", page).group(1))
    assert owen_gap < 1e-5, "Owen values must be efficient"


def test_failing_section_stops_the_demo_and_leaves_no_gallery(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>deepshap demo</title> a stale gallery of an earlier run")
    ran: list[str] = []

    def first_section(state: DemoState) -> SectionResult:
        ran.append("first")
        return SectionResult("first", ["fine"])

    def broken_section(state: DemoState) -> SectionResult:
        raise ValueError("explainer exploded")

    def never_section(state: DemoState) -> SectionResult:
        ran.append("never")
        return SectionResult("never", [])

    with pytest.raises(DemoSectionError, match="'broken' failed: ValueError: explainer exploded"):
        run_demo(tmp_path, quick=True, sections=[first_section, broken_section, never_section])
    assert ran == ["first"]
    assert not (tmp_path / "index.html").exists()


def test_gallery_lists_sections_in_order_and_escapes_text(tmp_path: Path) -> None:
    def one_section(state: DemoState) -> SectionResult:
        (state.out / "a.png").write_bytes(PNG_MAGIC)
        return SectionResult("One <b>", ["x < y & z"], ["a.png"])

    def two_section(state: DemoState) -> SectionResult:
        return SectionResult("Two", ["second"])

    index = run_demo(tmp_path / "new", sections=[one_section, two_section])
    page = index.read_text()
    assert index == tmp_path / "new" / "index.html"
    assert "One &lt;b&gt;" in page and "x &lt; y &amp; z" in page and "<b>" not in page
    assert page.index("One &lt;b&gt;") < page.index("<h2>Two</h2>")
    assert '<img src="a.png"' in page
    assert "MNIST CNN test accuracy" not in page, "no accuracy is claimed when no model was trained"


def test_cli_requires_a_command_and_parses_demo_options() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([])
    assert exit_info.value.code == 2
    args = parser.parse_args(["demo", "--quick", "--out", "somewhere"])
    assert args.command == "demo" and args.quick and args.out == Path("somewhere")
    assert parser.parse_args(["demo"]).out == Path("demo-output")


def test_a_section_that_returns_no_result_is_named_in_the_error(tmp_path: Path) -> None:
    def silent_section(state: DemoState) -> SectionResult:
        return None  # type: ignore[return-value]

    with pytest.raises(DemoSectionError, match="'silent' returned NoneType instead of a SectionResult"):
        run_demo(tmp_path, sections=[silent_section])


def test_sections_may_be_any_callable_and_return_no_text(tmp_path: Path) -> None:
    def titled(state: DemoState, title: str) -> SectionResult:
        return SectionResult(title, [])

    index = run_demo(tmp_path, sections=[functools.partial(titled, title="Only a title")])
    assert "<h2>Only a title</h2>" in index.read_text()


def test_gallery_links_images_by_url(tmp_path: Path) -> None:
    def odd_names_section(state: DemoState) -> SectionResult:
        return SectionResult("Odd", ["x"], ["fig #1.png", "what?.png"])

    page = run_demo(tmp_path, sections=[odd_names_section]).read_text()
    assert '<img src="fig%20%231.png"' in page and '<img src="what%3F.png"' in page


def test_demo_leaves_the_callers_matplotlib_backend_alone(tmp_path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")  # a backend of the caller's that is not Agg
    try:
        run_demo(tmp_path, sections=[lambda state: SectionResult("t", ["x"])])
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.switch_backend(before)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make, which CI runs the tests with")
def test_an_out_variable_in_the_environment_does_not_redirect_make(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "precious")}
    for target in ("clean", "demo"):
        commands = subprocess.run(
            ["make", "-n", "-C", str(ROOT), target], env=env, capture_output=True, text=True
        )
        assert "precious" not in commands.stdout and "demo-output" in commands.stdout, commands.stdout


@pytest.mark.usefixtures("demo_packages")
def test_cli_out_expands_home_and_rejects_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    calls: list[Path] = []
    monkeypatch.setattr("deepshap.demo.run_demo", lambda out, quick: calls.append(out) or out / "index.html")
    assert main(["demo", "--out=~/gallery"]) == 0
    assert calls == [tmp_path / "gallery"] and (tmp_path / "gallery").is_dir()
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "a_file")])
    assert exit_info.value.code == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_demo_replaces_its_own_gallery_but_not_a_page_of_the_users(tmp_path: Path) -> None:
    first = run_demo(tmp_path, sections=[lambda state: SectionResult("First", ["x"])])
    second = run_demo(tmp_path, sections=[lambda state: SectionResult("Second", ["x"])])
    assert second == first and "Second" in second.read_text() and "First" not in second.read_text()

    users = tmp_path / "site"
    users.mkdir()
    (users / "index.html").write_text("<html><title>my site</title></html>")
    ran: list[str] = []
    with pytest.raises(FileExistsError, match="is not a deepshap demo gallery"):
        run_demo(users, sections=[lambda state: ran.append("ran") or SectionResult("t", ["x"])])
    assert ran == [] and (users / "index.html").read_text() == "<html><title>my site</title></html>"


@pytest.mark.usefixtures("demo_packages")
def test_cli_reports_a_users_index_html_in_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "index.html").write_text("<p>mine</p>")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is not a deepshap demo gallery" in capsys.readouterr().err
    assert (tmp_path / "index.html").read_text() == "<p>mine</p>"


def test_importing_the_main_module_does_not_run_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import deepshap.__main__"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_an_index_html_folder_in_the_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index.html").mkdir()
    with pytest.raises(FileExistsError, match="is not a deepshap demo gallery"):
        run_demo(tmp_path, sections=[lambda state: SectionResult("t", ["x"])])


def test_cli_refuses_an_empty_output_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """``--out "$DIR"`` with DIR unset: the gallery would land in the current folder."""
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", ""])
    assert exit_info.value.code == 2
    assert "give a folder, not an empty path" in capsys.readouterr().err


@pytest.mark.usefixtures("demo_packages")
def test_cli_reports_a_failed_section_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(out: Path, quick: bool) -> Path:
        raise DemoSectionError("demo section 'gradient' failed: IsADirectoryError: gradient_mnist.png")

    monkeypatch.setattr("deepshap.demo.run_demo", failing)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        err == "deepshap demo: error: demo section 'gradient' failed: IsADirectoryError: gradient_mnist.png\n"
    )


@pytest.mark.usefixtures("demo_packages")
def test_cli_names_missing_demo_packages_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a)
    )
    ran: list[Path] = []
    monkeypatch.setattr("deepshap.demo.run_demo", lambda out, quick: ran.append(out) or out / "index.html")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and ran == []
    assert "not installed (mlxtend): pip install 'deepshap[torch,demo,jobs]'" in capsys.readouterr().err


def test_cli_version_and_demo_usage_in_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from deepshap import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"deepshap {__version__}"
    with pytest.raises(SystemExit):
        main(["demo", "--out", ""])
    assert capsys.readouterr().err.startswith("usage: deepshap demo [-h] [--out DIR] [--quick]")
