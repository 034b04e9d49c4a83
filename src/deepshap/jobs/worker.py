"""The worker: builds the model and explainer once, then explains one chunk at a time.

Attributions are over what the explainer sees: the model's input (after ``preprocess``) for Deep and
Gradient, the decoded images for Partition (its masker works on images; ``preprocess`` runs inside the
model function). Deep checks additivity as it does outside a job (``check_additivity=False`` turns that
off); the index records every image's gap for all three explainers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Unpack

import numpy as np
import numpy.typing as npt

from deepshap._typing import InputData, NativeModel
from deepshap.jobs.engine import ChunkResult, IndexRow, RowFields, WorkItem
from deepshap.jobs.models import load_model, weights_digest
from deepshap.jobs.spec import JobSpec

if TYPE_CHECKING:
    from deepshap.explanation import Explanation
    from deepshap.frameworks import ModelAdapter

#: An explainer as the worker calls it: ``explainer(images, **options)``.
Explain = Callable[..., "Explanation | list[Explanation]"]

PREDICT_BATCH = 256
NON_FINITE = (
    "ValueError: non-finite result (NaN or inf in f(x), the base values or the attributions): the model's "
    "output for this image overflowed or is undefined"
)


class ExplainWorker:
    """``ExplainWorker(spec)(item) -> ChunkResult``; ``functools.partial(ExplainWorker, spec)`` is the
    picklable factory an engine gets."""

    def __init__(self, spec: JobSpec) -> None:
        from deepshap.frameworks import load_adapter

        self.spec = spec
        loaded = load_model(spec.model)
        if loaded.graph_file and spec.explainer == "deep":
            raise ValueError(
                "the deep explainer needs the model's torch modules to apply its rules, and a TorchScript or "
                "torch.export file hides them: give the model as MODULE:FUNCTION, or use the gradient or "
                "partition explainer."
            )
        self.model = loaded.model
        self.model_digest = weights_digest(self.model)
        self.preprocess = spec.preprocess or loaded.preprocess or _identity
        background = self.preprocess(spec.background)
        self._adapter: ModelAdapter | None = None
        if _is_framework_model(self.model):
            self._adapter = load_adapter(self.model, background)
        self.explainer = self._build_explainer(background)
        self.n_outputs = int(self._predict(background[:1]).shape[1])
        names = spec.output_names
        if names is not None and len(names) < self.n_outputs:
            raise ValueError(
                f"{len(names)} class names for a model of {self.n_outputs} outputs: give one name per "
                "output (--class-names: one a line)."
            )
        if spec.outputs is not None and spec.outputs > self.n_outputs:
            raise ValueError(f"outputs={spec.outputs} but the model has only {self.n_outputs} outputs.")

    def _build_explainer(self, background: InputData) -> Explain:
        options = self.spec.constructor_options()
        if self.spec.explainer in ("deep", "gradient"):
            return _gradient_explainer(self.spec.explainer)(self.model, background, **options)
        from deepshap.explainers.partition import PartitionExplainer
        from deepshap.maskers import Image

        option = options.get("masker", "blur(8,8)")
        shape = tuple(self.spec.background.shape[1:])
        if isinstance(option, Image):
            masker = option
        elif isinstance(option, str | int | float | np.ndarray):
            masker = Image(option, shape)
        else:
            raise TypeError(
                f"masker must be an Image masker, its string such as 'blur(8,8)', or a fill value; "
                f"got {option!r}."
            )
        return PartitionExplainer(self._score_images, masker, output_names=self.spec.output_names)

    def _predict(self, inputs: InputData) -> np.ndarray:
        """Model scores ``(N, K)`` as float64 for model inputs (after preprocess)."""
        if self._adapter is not None:
            scores = self._adapter.predict(self._adapter.to_inputs(inputs, "X"), PREDICT_BATCH)
        else:
            scores = np.asarray(self.model(inputs))
        scores = np.asarray(scores, dtype=np.float64)
        return scores.reshape(len(scores), -1)

    def _score_images(self, images: np.ndarray) -> np.ndarray:
        """The Partition explainer's model: scores of decoded images."""
        return self._predict(self.preprocess(images))

    def __call__(self, item: WorkItem) -> ChunkResult:
        start = time.perf_counter()
        failures: dict[int, str] = {}
        if len(item.images):
            try:
                values, classes, fx, base = self._explain(item.chunk, item.images)
            except Exception:  # one bad image must not fail its chunk: find which images fail
                values, classes, fx, base, failures = self._explain_one_by_one(item)
        else:
            values = np.zeros((0, *self._value_shape(item), 1), np.float32)
            classes = fx = base = np.zeros((0, 1))
        gaps = _gaps(values, fx, base)
        for slot in range(len(values)):
            if slot not in failures and not _all_finite(values[slot], fx[slot], base[slot], gaps[slot]):
                failures[slot] = NON_FINITE
        if failures and len(failures) == len(item.images) and item.chunk == 0:
            raise RuntimeError(
                f"every image of the first chunk failed to explain, so the job stops (the model, its "
                f"preprocessing or the explainer options are likely wrong): {failures[0]}"
            )
        seconds = (time.perf_counter() - start) / max(len(item.images), 1)
        kept = [slot for slot in range(len(values)) if slot not in failures]
        rows = self._rows(item, classes, fx, base, gaps, failures, seconds)
        return ChunkResult(item.chunk, values[kept], rows, self.model_digest)

    def _explain_one_by_one(
        self, item: WorkItem
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
        """Explain a chunk's images one at a time; a failing image gets NaN values and its error text."""
        explained: list[tuple[np.ndarray, ...] | None] = []
        failures: dict[int, str] = {}
        for slot in range(len(item.images)):
            try:
                explained.append(self._explain(item.chunk, item.images[slot : slot + 1]))
            except Exception as exc:  # that image's error only
                failures[slot] = f"{type(exc).__name__}: {exc}"
                explained.append(None)
        done = [parts for parts in explained if parts is not None]
        template = (
            done[0]
            if done
            else (
                np.zeros((1, *self._value_shape(item), 1), np.float32),
                np.zeros((1, 1), np.int64),
                np.zeros((1, 1)),
                np.zeros((1, 1)),
            )
        )
        blank = tuple(np.zeros_like(array) for array in template)  # the place of a failed image
        filled = [blank if parts is None else parts for parts in explained]
        values, classes, fx, base = (np.concatenate(arrays) for arrays in zip(*filled, strict=True))
        return values, classes, fx, base, failures

    def _value_shape(self, item: WorkItem) -> tuple[int, ...]:
        if self.spec.explainer == "partition":
            return tuple(item.images.shape[1:])
        return tuple(np.asarray(self.preprocess(self.spec.background[:1])).shape[1:])

    def _explain(
        self, chunk: int, images: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        spec = self.spec
        k = spec.outputs
        if spec.explainer == "partition":
            scores = self._score_images(images)
            classes = _top_classes(scores, k)
            explanation = _single(self.explainer(images, outputs=classes, silent=True, **spec.call_options()))
        else:
            inputs = self.preprocess(images)
            scores = self._predict(inputs)
            classes = _top_classes(scores, k)
            ranked = {} if k is None else {"ranked_output": int(k)}
            if spec.explainer == "deep":
                explanation = _single(self.explainer(inputs, **ranked, **spec.call_options()))
            else:
                seed = spec.chunk_seed(chunk)
                explanation = _single(self.explainer(inputs, rseed=seed, **ranked, **spec.call_options()))
            if explanation.output_indexes is not None:
                classes = np.asarray(explanation.output_indexes, dtype=np.int64)
        values = np.asarray(explanation.values)
        if values.ndim == np.ndim(images if spec.explainer == "partition" else inputs):
            values = values[..., None]  # a single-output model explained without ranking
        base = np.asarray(explanation.base_values, dtype=np.float64).reshape(len(values), -1)
        fx = np.take_along_axis(scores, classes, axis=1)
        return values, classes, fx, base

    def _rows(
        self,
        item: WorkItem,
        classes: np.ndarray,
        fx: np.ndarray,
        base: np.ndarray,
        gaps: np.ndarray,
        failures: dict[int, str],
        seconds: float,
    ) -> list[IndexRow]:
        names = self.spec.output_names
        rows, slot = [], 0
        for image_id in item.ids:
            if image_id in item.errors:
                rows.append(_row(image_id, error=item.errors[image_id]))
                continue
            if slot in failures:
                rows.append(_row(image_id, seconds=seconds, error=failures[slot]))
                slot += 1
                continue
            explained = [int(c) for c in classes[slot]]
            rows.append(
                _row(
                    image_id,
                    classes=explained,
                    class_names=None if names is None else [str(names[c]) for c in explained],
                    fx=[float(v) for v in fx[slot]],
                    base_values=[float(v) for v in base[slot]],
                    gap=float(gaps[slot]),
                    seconds=seconds,
                )
            )
            slot += 1
        return rows


def _row(image_id: str, **fields: Unpack[RowFields]) -> IndexRow:
    """An index row with every column present (Parquet needs one schema for every chunk)."""
    row: IndexRow = {
        "id": image_id,
        "classes": None,
        "class_names": None,
        "fx": None,
        "base_values": None,
        "gap": None,
        "seconds": None,
        "error": None,
    }
    row.update(fields)
    return row


def _gaps(values: np.ndarray, fx: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Each image's additivity/efficiency gap: max over its classes of |sum(values) - (f(x) - base)|."""
    if not len(values):
        return np.zeros(0)
    sums = values.reshape(len(values), -1, values.shape[-1]).sum(axis=1, dtype=np.float64)
    return np.abs(sums - (fx - base)).max(axis=1)


def _all_finite(*arrays: npt.ArrayLike) -> bool:
    return all(bool(np.isfinite(array).all()) for array in arrays)


def _top_classes(scores: np.ndarray, k: int | None) -> np.ndarray:
    """The explained classes ``(N, R)``: the top ``k`` by score (ties to the lower index), or all."""
    if k is None:
        return np.tile(np.arange(scores.shape[1], dtype=np.int64), (len(scores), 1))
    if k > scores.shape[1]:
        raise ValueError(f"outputs={k} but the model has only {scores.shape[1]} outputs.")
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)


def _gradient_explainer(name: str) -> Callable[..., Explain]:
    """DeepExplainer ("deep") or GradientExplainer: built with the job's constructor options, which are the
    user's, of any type, and which the explainer checks as it checks its arguments."""
    from deepshap.explainers.deep import DeepExplainer
    from deepshap.explainers.gradient import GradientExplainer

    return DeepExplainer if name == "deep" else GradientExplainer


def _single(explanation: Explanation | list[Explanation]) -> Explanation:
    """The Explanation of a model's one input (a job explains models of one input)."""
    if isinstance(explanation, list):
        raise ValueError(f"the model takes {len(explanation)} inputs; a job explains models of one input.")
    return explanation


def _identity(images: np.ndarray) -> np.ndarray:
    return images


def _is_framework_model(model: NativeModel) -> bool:
    from deepshap.frameworks import detect_framework

    try:
        detect_framework(model)
    except TypeError:
        return False
    return True
