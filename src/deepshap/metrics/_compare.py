"""``compare``: several explainers on the same images, measured against the same sampled truth.

Each explainer is timed, its values are summed per region and compared with the regions' sampled
Shapley values (relative L1 error and correlation, with bootstrap intervals), and its deletion and
insertion AUCs are measured. The truth is sampled once and shared by every explainer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from deepshap._typing import InputData
from deepshap.metrics._curves import Fill, deletion_insertion
from deepshap.metrics._errors import ErrorReport, explanation_error
from deepshap.metrics._explainers import Explain, available, resolve_explainer
from deepshap.metrics._game import MeasuredModel, ModelRunner
from deepshap.metrics._regions import Regions, grid
from deepshap.metrics._truth import RegionShapley, _numpy_images, output_table, shapley_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Comparison", "ComparisonRow", "compare"]

DEFAULT_EXPLAINERS = (
    "deepshap.deep",
    "deepshap.gradient",
    "shap.deep",
    "shap.gradient",
    "captum.deepliftshap",
    "captum.gradientshap",
)


@dataclass
class ComparisonRow:
    """One explainer's results; ``failure`` says why it did not run (then the numbers are NaN)."""

    name: str
    seconds: float = float("nan")
    error: ErrorReport | None = None
    deletion_auc: float = float("nan")
    insertion_auc: float = float("nan")
    failure: str | None = None


@dataclass
class Comparison:
    """The table :func:`compare` returns: rows per explainer and the truth they were measured against."""

    rows: list[ComparisonRow]
    truth: RegionShapley
    fill: Fill
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        level = f"{self.truth.confidence:.0%}"
        lines = [
            f"| explainer | error to truth (rel. L1, {level} CI) | correlation ({level} CI) | "
            "deletion AUC (lower is better) | insertion AUC (higher is better) | time (s) |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            if row.failure is not None or row.error is None:
                lines.append(f"| {row.name} | failed: {row.failure} | | | | |")
                continue
            low, high = row.error.relative_l1_interval
            c_low, c_high = row.error.correlation_interval
            lines.append(
                f"| {row.name} | {row.error.relative_l1:.1%} ({low:.1%}-{high:.1%}) | "
                f"{row.error.correlation:.3f} ({c_low:.3f}-{c_high:.3f}) | {row.deletion_auc:.3f} | "
                f"{row.insertion_auc:.3f} | {row.seconds:.2f} |"
            )
        truth = self.truth
        floor = next((r.error.noise_floor for r in self.rows if r.error is not None), float("nan"))
        lines.append("")
        lines.append(
            f"Truth: {truth.regions.n_regions} regions, {min(truth.n_permutations)} antithetic permutations "
            f"per image, {truth.n_evaluations} model evaluations in {truth.seconds:.1f} s; its noise floor "
            f"(relative L1 of an exact explanation) {floor:.1%}. Curves fill: {self.fill}."
        )
        lines.extend(self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def plot(self, show: bool = True) -> Figure:
        """Bar charts of the error to truth (with its interval) and of the two AUCs per explainer."""
        import matplotlib.pyplot as plt

        measured = [(row, row.error) for row in self.rows if row.error is not None]
        rows = [row for row, _ in measured]
        names = [row.name for row in rows]
        errors = np.array([error.relative_l1 for _, error in measured])
        low, high = np.array([error.relative_l1_interval for _, error in measured]).reshape(-1, 2).T
        figure, axes = plt.subplots(1, 3, figsize=(14, 0.5 * len(rows) + 2), sharey=True)
        positions = np.arange(len(rows))
        axes[0].barh(positions, errors, color="tab:red")
        axes[0].hlines(
            positions, low, high, color="black", linewidth=2
        )  # the interval (may miss the bar's end)
        axes[0].set_title("error to the true Shapley values\n(relative L1, lower is better)")
        axes[1].barh(positions, [row.deletion_auc for row in rows], color="tab:blue")
        axes[1].set_title("deletion AUC (lower is better)")
        axes[2].barh(positions, [row.insertion_auc for row in rows], color="tab:green")
        axes[2].set_title("insertion AUC (higher is better)")
        axes[0].set_yticks(positions, names)
        axes[0].invert_yaxis()
        figure.tight_layout()
        if show:
            plt.show()
        return figure


def compare(
    model: MeasuredModel,
    images: InputData,
    background: InputData,
    explainers: Sequence[str | tuple[str, Explain]] = DEFAULT_EXPLAINERS,
    regions: Regions | int | None = None,
    outputs: Literal["top"] | npt.ArrayLike | None = "top",
    max_permutations: int = 300,
    tolerance: float = 0.0,
    fill: Fill = "blur",
    n_steps: int = 50,
    batch_size: int = 256,
    seed: int = 0,
    show: bool = True,
    plot: bool = False,
    progress: bool = True,
) -> Comparison:
    """Run ``explainers`` on ``images`` against ``background`` and measure each one.

    ``explainers``: names (see ``deepshap.metrics.EXPLAINERS``) or ``(name, function)`` pairs with
    ``function(model, images, background, outputs) -> (N, *sample_shape, R)``; a name whose library is
    missing, or that raises, becomes a row that says so. ``regions``: a :class:`Regions` or a block size
    in pixels (default: 4x4 blocks). ``outputs``: ``"top"`` (each image's most likely output), ``None``
    (all) or indices. ``show`` prints the table; ``plot`` draws it.
    """
    resolved = [resolve_explainer(spec) for spec in explainers]  # unknown names fail before any work
    images = _numpy_images(images)
    background = _numpy_images(background)
    regions = (
        grid(images.shape[1:], 4 if regions is None else regions)
        if not isinstance(regions, Regions)
        else regions
    )
    runner = ModelRunner(model, background, batch_size)
    if isinstance(outputs, str) and outputs == "top":
        outputs = runner.predict(images).argmax(axis=1)[:, None]
    table = output_table(outputs, len(images), runner.n_outputs)
    truth = shapley_values(
        model,
        images,
        background,
        regions,
        table,
        max_permutations,
        tolerance,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    rows = []
    for spec, (name, explain) in zip(explainers, resolved, strict=True):
        reason = available(spec, model)
        if reason is not None:
            rows.append(ComparisonRow(name, failure=reason))
            continue
        try:
            start = time.perf_counter()
            values = np.asarray(explain(model, images, background, table), dtype=np.float64)
            seconds = time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 - a rival that raises is reported, not fatal
            rows.append(ComparisonRow(name, failure=f"{type(error).__name__}: {error}"[:200]))
            continue
        error_report = explanation_error(values, truth, outputs=table, seed=seed)
        curves = deletion_insertion(
            model,
            images,
            values,
            outputs=table,
            fill=fill,
            n_steps=n_steps,
            regions=regions,
            batch_size=batch_size,
            progress=progress,
        )
        rows.append(
            ComparisonRow(
                name,
                seconds,
                error_report,
                float(curves.deletion_auc.mean()),
                float(curves.insertion_auc.mean()),
            )
        )
    comparison = Comparison(rows, truth, fill)
    if show:
        print(comparison.to_markdown())
    if plot:
        comparison.plot(show=show)
    return comparison
