"""The Partition explainer: Owen values of an image classifier over a binary partition of the pixels.

The recursion follows shap's Partition explainer. Starting from the root (all pixels), a node of the tree
is "expanded" in a context (the pixels already kept): the model is evaluated with the node's left half and
with its right half added to the context, the interaction term stays on the node, and each half goes back
to a priority queue in both contexts (nothing and the sibling added), weighted 1/2 per level. The queue
pops the largest effect first, so the budget (``max_evals``) is spent where the output changes most; what
is left on the queue when it runs out is spread evenly over the node's pixels. Every expansion keeps the
sum of the node's values equal to ``f(context + node) - f(context)``, so the values of an image add up
exactly to ``f(x) - f(fully masked x)`` whatever the budget. The recursion is in :mod:`._owen_recursion`;
this module checks the arguments, calls the model and assembles the Explanation.

Compared with shap: a mask is a root path of tree regions, and masked images are block copies of those
regions into a reused batch buffer, each image going to the slot whose last image is most like it so that
only the regions that differ are rewritten; two images are explained at once, one building its next batch
while the model runs on the other's (:mod:`._lanes`); the blur is computed once per image; inpainting
never touches the kept pixels; only the selected outputs are stored (values in the model's own precision,
node values sparse); ties in the queue are broken first come first served instead of at random, so
results are reproducible; the leaves of the axis tree are pixels with their channels together, where
shap's split each pixel into its channels (the values agree until the budget reaches single pixels).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast

import numpy as np
import numpy.typing as npt

from deepshap.explainers._lanes import run_in_lanes
from deepshap.explainers._owen_recursion import ImageResult, ImageSummary, owen_values
from deepshap.maskers import Image
from deepshap.maskers._paths import Path

if TYPE_CHECKING:
    from deepshap.explanation import Explanation

__all__ = ["Explainer", "PartitionExplainer", "owen_values"]

_AUTO_EVALS = 500
_AUTO_BATCH_BYTES = 64 * 2**20
#: Values are float64, as shap's, unless that array would be larger than this: then they keep the model's
#: precision (float32), which holds the <1 GB target for all 1000 classes of a 224x224 image (1.2 GB in
#: float64), with a warning to sum them in float64.
_FLOAT64_VALUES_BYTES = 256 * 2**20
_MIN_EVALS = 4  # f(fully masked), f(x) and the two halves of the root
_BUFFER_HANDOVER = threading.Lock()  # an explainer's batch buffers go to one call at a time
_LANES = 2  # images explained at once: one builds its next batch while the model runs on the other's


class OutputSelector(Protocol):
    """A lazy selector such as ``Explanation.argsort.flip[:4]``: picks outputs from an image's scores."""

    def apply(self, obj: Explanation) -> object:
        """The selected output indices (or an Explanation of them) among the scores in ``obj``."""
        ...


class Explainer:
    """shap's ``Explainer`` entry point: with an Image masker, ``Explainer(f, masker)`` is a
    :class:`PartitionExplainer` (the only model-agnostic explainer deepshap has)."""

    def __new__(
        cls, model: Callable[[np.ndarray], Any], masker: object, output_names: Sequence[str] | None = None
    ) -> PartitionExplainer:
        if cls is Explainer:
            if not isinstance(masker, Image):
                raise TypeError(
                    "deepshap.Explainer explains images with a deepshap.maskers.Image masker; got "
                    f"{type(masker).__name__}. Use maskers.Image('inpaint_telea', X[0].shape), or "
                    "DeepExplainer / GradientExplainer for a network's own gradients."
                )
            cls = PartitionExplainer
        return cast(PartitionExplainer, super().__new__(cls))  # the only kind of Explainer there is


class PartitionExplainer(Explainer):
    """Owen values of ``model`` over the partition tree of an Image masker.

    Parameters
    ----------
    model:
        A function of a numpy batch ``(B, H, W, C)`` returning scores ``(B, K)`` (or ``(B,)``): numpy,
        or anything with ``.numpy()`` / ``__array__`` (torch, TensorFlow tensors).
    masker:
        A :class:`deepshap.maskers.Image`.
    output_names:
        Names of the K model outputs, e.g. the class names; the Explanation then carries the names of the
        explained outputs per image.

    With two or more images, two are explained at once in worker threads, each building its next batch
    while the model runs on the other's; the model itself is always called from the calling thread, one
    batch at a time. Each of the two threads keeps the buffer its batches of masked images are built in
    (``batch_size`` + 1 images) from image to image and from call to call, instead of allocating one for
    every image. Calls running at the same time in several threads each get their own buffers. A model
    that starts processes with the "fork" method does so while the other image's thread runs; use
    "spawn" there, as with any threaded program.

    The batches the model gets are views of those buffers, rewritten for the next call. The model may
    change a batch in place as a whole (``x -= mean``: this is detected and every image is then built
    afresh), but it must copy the batch (``x.copy()``) if it keeps it after returning (a cache of the
    last input) or changes only part of the images in place from its second call on: neither can be
    detected, and the values would silently be those of other images.
    """

    def __init__(
        self,
        model: Callable[[np.ndarray], Any],
        masker: Image,
        output_names: Sequence[str] | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(
                f"model must be a function of a numpy batch of images; got {type(model).__name__}."
            )
        if not isinstance(masker, Image):
            raise TypeError(f"masker must be a deepshap.maskers.Image; got {type(masker).__name__}.")
        self.model = model
        self.masker = masker
        self.output_names = None if output_names is None else list(output_names)
        self.expected_value: np.ndarray | None = None
        self._batch_buffers: list[np.ndarray] = []  # one per lane, reused by every image and call

    def __call__(
        self,
        X: Any,
        max_evals: int | str = _AUTO_EVALS,
        batch_size: int | str = "auto",
        outputs: OutputSelector | npt.ArrayLike | None = None,
        fixed_context: int | None = None,
        silent: bool = False,
    ) -> Explanation:
        """Explain the images ``X`` ``(N, H, W, C)``; returns an :class:`~deepshap.Explanation`.

        ``max_evals`` model evaluations are spent per image (``"auto"``: 500), in batches of
        ``batch_size`` masked images (``"auto"``: 50, fewer for very large images); images go in pairs,
        so an odd ``max_evals`` or ``batch_size`` can be exceeded by one, as in shap. ``outputs`` selects
        what is explained: None (every output), a list of output indices (the same for every image), an
        ``(N, k)`` array of indices per image, or a lazy selector such as
        ``Explanation.argsort.flip[:4]`` applied to each image's scores. ``fixed_context`` 0 or 1 keeps
        the context of every expansion empty or full (half the evaluations per level, not Owen values).

        The Explanation has ``values`` ``(N, H, W, C, k)`` (float64 as in shap, so that a numpy sum over
        the pixels gives f(x) - f(masked); the model's float32 if float64 would take over 256 MiB),
        ``base_values`` ``(N, k)`` (the model on the fully masked image), ``data``, ``output_indexes``
        ``(N, k)``, ``output_names`` ``(N, k)`` when names were given, ``clustering`` ``(N, L-1, 4)``
        (the tree as a scipy linkage; per image in an object array when superpixel trees differ in
        size) and ``hierarchical_values``: per image a ``scipy.sparse`` ``(2L-1, k)`` array of the
        values left on each tree node (most nodes are never expanded, so a
        dense array would be mostly zeros).
        """
        from tqdm.auto import tqdm

        from deepshap.explanation import Explanation

        start = time.perf_counter()
        images = self._check_images(X)
        max_evals = _check_max_evals(max_evals)
        batch_size = _check_batch_size(batch_size, images[0].nbytes)
        if fixed_context not in (None, 0, 1):
            raise ValueError(f"fixed_context must be None, 0 or 1; got {fixed_context!r}.")
        fixed_context = None if fixed_context is None else int(fixed_context)  # np.int64(1) -> 1
        per_image_outputs = _per_image_outputs(outputs, len(images))
        lanes = _LANES if len(images) > 1 else 1
        with _BUFFER_HANDOVER:  # a call running alongside in another thread finds none: its own buffers
            held, self._batch_buffers = self._batch_buffers, []
        # lane k builds in buffers[k]; the rest wait
        buffers: list[np.ndarray | None] = [*held, *[None] * (lanes - len(held))]

        def explain(i: int, lane: int, call_model: Callable[..., np.ndarray]) -> ImageResult:
            result, buffers[lane] = self._explain_image(
                images[i],
                per_image_outputs[i],
                max_evals,
                batch_size,
                fixed_context,
                buffers[lane],
                call_model,
            )
            return result

        summaries: dict[int, ImageSummary] = {}  # by image, in the order they finish
        values: np.ndarray | None = None
        with tqdm(total=len(images), desc="Partition explainer", disable=silent) as progress:
            for i, result in run_in_lanes(explain, len(images), self._call_model, lanes):
                if values is None:
                    shape = (len(images), *images.shape[1:], len(result.output_index))
                    values = np.zeros(shape, dtype=_values_dtype(shape, result.dtype))
                elif len(result.output_index) != values.shape[-1]:
                    raise ValueError(
                        f"outputs selected {len(result.output_index)} outputs for image {i} but "
                        f"{values.shape[-1]} for another image; select the same number for every image."
                    )
                result.write_values(values[i], self.masker.input_shape[2])
                summaries[i] = result.summary()
                progress.update()
        assert values is not None  # there is at least one image (see _check_images)
        self._batch_buffers = [buffer for buffer in buffers if buffer is not None]
        results = [summaries[i] for i in range(len(images))]
        base_values = np.stack([r.base for r in results])
        output_index = np.stack([r.output_index for r in results])
        self.expected_value = base_values[0] if len(base_values) == 1 else base_values
        names = None
        if self.output_names is not None:
            names = np.asarray(self.output_names, dtype=object)[output_index]
        hierarchical = np.empty(len(results), dtype=object)
        hierarchical[:] = [r.hierarchical for r in results]
        return Explanation(
            values=values,
            base_values=base_values,
            data=images,
            output_names=names,
            output_indexes=output_index,
            hierarchical_values=hierarchical,
            clustering=_stack_or_list([r.clustering for r in results]),
            compute_time=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------------------------------------

    def _check_images(self, X: Any) -> np.ndarray:
        if hasattr(X, "detach"):  # a torch tensor, perhaps one that requires grad
            X = X.detach().cpu()
        images = np.asarray(X)
        shape = self.masker.input_shape
        if images.shape == shape:
            raise ValueError(
                f"X is one image {images.shape}; the explainer takes a batch (N, *{shape}): pass X[None]."
            )
        if images.ndim == 3 and shape[2] == 1 and images.shape[1:] == shape[:2]:
            raise ValueError(
                f"X has shape {images.shape}, grayscale images without a channel axis; the masker takes "
                f"{shape}: pass X[..., None]."
            )
        if images.ndim != 4 or images.shape[1:] != shape or len(images) == 0:
            raise ValueError(
                f"X has shape {images.shape} but the masker was built for images of shape {shape}; "
                f"pass a batch (N, *{shape}) or build the masker with maskers.Image(mask_value, X[0].shape)."
            )
        return images

    def _call_model(self, batch: np.ndarray, n_outputs: int | None) -> np.ndarray:
        """The model's scores for a batch as ``(B, K)`` numpy, checked for shape and finiteness."""
        out = self.model(batch)
        if isinstance(out, Mapping):  # a dict, or a Hugging Face ModelOutput
            raise TypeError(
                f"The model returned a mapping with keys {list(out)[:5]}; it must return the scores as an "
                "array or tensor (B, K), e.g. outputs['logits'] or outputs.logits."
            )
        if hasattr(out, "detach"):  # torch
            out = out.detach().cpu()
            if out.is_floating_point() and out.element_size() < 4:  # bfloat16 has no numpy dtype
                out = out.float()
        # a copy: the scores are read after the model's next call, which may reuse its output memory
        out = np.array(out.numpy() if hasattr(out, "numpy") else out)
        if out.dtype.kind == "V":  # TensorFlow's bfloat16 (an ml_dtypes type)
            out = out.astype(np.float32)
        if out.ndim == 1:
            out = out[:, None]
        if (
            out.ndim != 2
            or out.shape[0] != len(batch)
            or (n_outputs is not None and out.shape[1] != n_outputs)
        ):
            expected = f"({len(batch)}, {n_outputs if n_outputs is not None else 'K'})"
            raise ValueError(
                f"The model returned shape {out.shape} for a batch of {len(batch)} images; it must return "
                f"{expected}: one row of scores per image, the same number of outputs every time."
            )
        if out.dtype.kind not in "biuf":
            raise TypeError(f"The model returned dtype {out.dtype}; it must return numbers.")
        if not np.all(np.isfinite(out)):
            raise ValueError(
                "The model returned NaN or infinite scores for masked images; make it finite on every "
                "input (check its preprocessing of the masked image values)."
            )
        return out

    def _explain_image(
        self,
        x: np.ndarray,
        outputs: OutputSelector | np.ndarray | None,
        max_evals: int,
        batch_size: int,
        fixed_context: int | None,
        buffer: np.ndarray | None,
        call_model: Callable[..., np.ndarray],
    ) -> tuple[ImageResult, np.ndarray]:
        """The Owen values of one image, and the batch buffer (``buffer`` reused when it fits).

        ``call_model`` is :meth:`_call_model`, or its relay to the calling thread (see :mod:`._lanes`).
        """
        tree = self.masker.tree(x)
        filler = self.masker.filler(x)
        # an Owen batch can take one pair past batch_size; the buffer goes from image to image
        buffer = filler.reserve(batch_size + 1, buffer)
        batch, slot = filler.images(tree, [((tree.root, False),), ((tree.root, True),)])
        scores = call_model(batch, None)[slot]
        n_outputs = scores.shape[1]
        output_index = _resolve_outputs(outputs, scores[1], self.output_names)
        f00, f11 = scores[:, output_index].astype(np.float64)

        def evaluate(paths: list[Path]) -> np.ndarray:
            batch, slot = filler.images(tree, paths)
            return call_model(batch, n_outputs)[slot[:, None], output_index].astype(np.float64)

        nodes, node_values, expanded = owen_values(
            evaluate, tree, f00, f11, max_evals - 2, batch_size, fixed_context
        )
        dtype = np.result_type(scores.dtype, np.float32)
        return ImageResult(tree, nodes, node_values, expanded, f00, output_index, dtype), buffer


def _values_dtype(shape: tuple[int, ...], model_dtype: np.dtype) -> np.dtype:
    """float64 for the values unless that array would exceed ``_FLOAT64_VALUES_BYTES`` (then the model's
    precision, with a warning: a float32 sum over 150,000 pixels misses f(x) by about 1e-4 relative)."""
    size = int(np.prod(shape))
    if size * 8 <= _FLOAT64_VALUES_BYTES or model_dtype == np.float64:
        return np.dtype(np.float64)
    warnings.warn(
        f"The values ({' x '.join(map(str, shape))}) would take {size * 8 / 2**30:.1f} GiB in float64; they "
        f"are kept in the model's {model_dtype} instead. Sum them with dtype=np.float64 (a {model_dtype} "
        "sum over the pixels misses f(x) by about 1e-4 relative), or explain fewer outputs, e.g. "
        "outputs=Explanation.argsort.flip[:4].",
        stacklevel=3,
    )
    return np.dtype(model_dtype)


def _stack_or_list(arrays: list[np.ndarray]) -> np.ndarray:
    """One array when every image has the same tree, else an object array of per-image arrays (shap's way)."""
    if all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out


def _check_max_evals(max_evals: int | str) -> int:
    if max_evals == "auto":
        return _AUTO_EVALS
    if isinstance(max_evals, bool) or not isinstance(max_evals, int | np.integer):
        raise TypeError(f"max_evals must be an int or 'auto'; got {max_evals!r}.")
    if max_evals < _MIN_EVALS:
        raise ValueError(
            f"max_evals={max_evals} is too small to evaluate the root of the partition: it needs at least "
            f"{_MIN_EVALS} (the fully masked image, the image, and its two halves); 300-500 is typical."
        )
    return int(max_evals)


def _check_batch_size(batch_size: int | str, image_bytes: int) -> int:
    if batch_size == "auto":
        return int(max(2, min(50, _AUTO_BATCH_BYTES // max(image_bytes, 1))))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or 'auto'; got {batch_size!r}.")
    return int(batch_size)


def _is_selector(outputs: object) -> TypeGuard[OutputSelector]:
    """Whether ``outputs`` is a lazy selector (deepshap's or shap's ``Explanation.argsort...``)."""
    return hasattr(outputs, "apply")


def _per_image_outputs(
    outputs: OutputSelector | npt.ArrayLike | None, n_images: int
) -> list[OutputSelector | np.ndarray | None]:
    """One output selector per image: None, a lazy selector, or indices."""
    if outputs is None or _is_selector(outputs):
        return [outputs] * n_images
    index = np.asarray(outputs)
    if index.ndim == 0:
        index = index[None]
    if index.ndim == 1:
        return [index] * n_images
    if index.ndim == 2 and len(index) == n_images:
        return list(index)
    raise ValueError(
        f"outputs has shape {index.shape}; give a list of output indices, an (N, k) array of indices per "
        f"image (N={n_images}), or a selector such as Explanation.argsort.flip[:4]."
    )


def _resolve_outputs(
    outputs: OutputSelector | np.ndarray | None, scores: np.ndarray, output_names: list[str] | None
) -> np.ndarray:
    """The model outputs explained for one image, as int64 indices."""
    n_outputs = len(scores)
    if output_names is not None and len(output_names) != n_outputs:
        raise ValueError(
            f"output_names has {len(output_names)} names but the model returns {n_outputs} outputs; "
            "give one name per output."
        )
    if outputs is None:
        return np.arange(n_outputs, dtype=np.int64)
    if _is_selector(outputs):
        from deepshap.explanation import Explanation

        selected = outputs.apply(Explanation(scores))
        index = np.asarray(getattr(selected, "values", selected))
    else:
        index = np.asarray(outputs)
    if index.ndim != 1 or len(index) == 0 or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"outputs must select a non-empty list of integer output indices; got {index!r}.")
    if index.min() < -n_outputs or index.max() >= n_outputs:
        raise ValueError(f"outputs {index.tolist()} out of range for a model with {n_outputs} outputs.")
    return index.astype(np.int64) % n_outputs
