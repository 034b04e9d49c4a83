"""Run the demo's sections in order with a progress bar, timing each, then write the gallery."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from deepshap.demo.gallery import is_gallery, write_gallery
from deepshap.demo.sections import SECTIONS, DemoSettings, DemoState, Section, SectionResult


class DemoSectionError(RuntimeError):
    """A demo section failed; the demo stops instead of skipping it."""


def run_sections(state: DemoState, sections: Sequence[Section]) -> list[SectionResult]:
    """Run each section once, in order, recording its wall time; the first failure stops the run."""
    results = []
    with tqdm(sections, desc="deepshap demo", unit="section") as bar:
        for section in bar:
            name = getattr(section, "__name__", type(section).__name__).removesuffix("_section")
            bar.set_postfix_str(name)
            start = time.perf_counter()
            try:
                result = section(state)
            except Exception as exc:
                raise DemoSectionError(f"demo section '{name}' failed: {type(exc).__name__}: {exc}") from exc
            if not isinstance(result, SectionResult):
                raise DemoSectionError(
                    f"demo section '{name}' returned {type(result).__name__} instead of a SectionResult."
                )
            result.seconds = time.perf_counter() - start
            results.append(result)
            tqdm.write(f"[{result.seconds:6.1f} s] {result.title}: {result.text[-1] if result.text else ''}")
    return results


def summary_lines(state: DemoState, settings: DemoSettings, quick: bool, total: float) -> list[str]:
    lines = [
        "Shapley-value explanations of a CNN trained here on MNIST and of a pretrained ImageNet classifier, "
        "computed offline with deepshap.",
        f"Mode: {'quick' if quick else 'full'}; total time {total:.1f} s on {platform.machine()} "
        f"with Python {platform.python_version()}.",
    ]
    if "cnn" in state.__dict__:  # trained by a section in this run
        lines.insert(
            1, f"MNIST CNN test accuracy: {state.cnn.test_accuracy:.1%} after {settings.epochs} epoch(s)."
        )
    return lines


def run_demo(out: Path | str, quick: bool = False, sections: Sequence[Section] = SECTIONS) -> Path:
    """Run the demo into ``out`` (created if needed) and return the path of its ``index.html``.

    Figures are saved to files and closed, never shown, with whatever matplotlib backend is in use (the
    command line picks Agg); a notebook's backend and figures are left as they were. An ``index.html``
    in ``out`` that the demo did not write is never replaced: that is a :class:`FileExistsError`.
    """
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    if (index.exists() or index.is_symlink()) and not (index.is_file() and is_gallery(index)):
        raise FileExistsError(
            f"{index} exists and is not a deepshap demo gallery; the demo would replace it. Choose "
            "another output folder (the demo writes index.html and its pictures there)."
        )
    index.unlink(missing_ok=True)  # a failed run must not leave an old gallery looking fresh
    settings = DemoSettings.quick() if quick else DemoSettings()
    state = DemoState(settings, out)
    start = time.perf_counter()
    results = run_sections(state, sections)
    return write_gallery(out, summary_lines(state, settings, quick, time.perf_counter() - start), results)
