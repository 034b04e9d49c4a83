"""What the zoo tests share: real photos to fit normalisation statistics on, and the additivity measure.

Random-weight networks from model libraries compute outputs that barely depend on the input (batch
normalisation with its initial statistics shrinks or blows up every activation), which makes an
additivity figure meaningless. The builders fit normalisation statistics on these photos and scale the
classifier so that the outputs spread; :func:`explain` measures the additivity gap with the explainer's
own yardstick and returns the output change it was measured against, which the tests require to be large.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest accepted additivity gap, relative to the output change explained (DeepExplainer's tolerance).
RTOL = 1e-4
#: Smallest accepted mean |f(x) - E f(background)| relative to the spread of the outputs: below it the
#: model ignores its input and additivity proves nothing.
MIN_RELATIVE_CHANGE = 0.05


@functools.lru_cache(maxsize=4)
def photos(size: int, count: int = 12, seed: int = 0) -> np.ndarray:
    """``count`` float32 RGB crops of ``size`` x ``size`` pixels in [0, 1] from the photos bundled with
    scikit-image and scikit-learn (nothing is downloaded): whole images first, then random crops.
    Read-only: the result is cached and shared by the builders."""
    from skimage import data
    from skimage.transform import resize

    images = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    try:
        from sklearn.datasets import load_sample_image

        images += [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    crops = []
    for k in range(count):
        image = images[k % len(images)]
        if k >= len(images):
            h, w = image.shape[:2]
            side = int(min(h, w) * rng.uniform(0.4, 0.8))
            top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            image = image[top : top + side, left : left + side]
        crops.append(resize(image, (size, size), anti_aliasing=True))
    result = np.stack(crops).astype(np.float32)
    result.setflags(write=False)
    return result


@dataclass
class Case:
    """A zoo entry: the wrapped model, its background and the rows explained."""

    model: Any
    background: np.ndarray
    X: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])


@dataclass
class ZooResult:
    """One explained model: the largest relative additivity gap, the output change it is relative to
    (mean |f(x) - E f(b)| over the spread of the outputs) and the seconds DeepExplainer took."""

    gap: float
    relative_change: float
    seconds: float


def explain(
    model: Any, background: Any, X: Any, forward: Callable[[Any], np.ndarray], batch_size: int = 64
) -> ZooResult:
    """Explain every output of ``model`` at ``X`` with DeepExplainer and measure additivity.

    ``forward`` gives the model's outputs ``(N, K)`` as numpy. The gap of sample i, output k is
    ``|sum phi - (f(x) - E f(b))|`` over ``|f(x) - E f(b)|`` plus its mean over all samples and outputs,
    as DeepExplainer's own check judges it: less its allowance for the rounding of attributions that
    cancel (``CANCELLATION_ULPS`` roundings of ``sum |phi|`` in the values' dtype, which float32 sums over
    a deep network's thousands of terms reach whatever the rules), without its allowance for the
    rounding of large outputs.
    """
    import deepshap
    from deepshap.explainers.deep import CANCELLATION_ULPS

    start = time.perf_counter()
    explainer = deepshap.DeepExplainer(model, background, batch_size=batch_size)
    values = explainer.shap_values(X, check_additivity=False)
    seconds = time.perf_counter() - start
    fx = np.asarray(forward(X), dtype=np.float64)
    fb = np.asarray(forward(background), dtype=np.float64).mean(axis=0)
    per_output = values if isinstance(values, list) else [values]
    n = fx.shape[0]
    total = np.stack([np.asarray(v, dtype=np.float64).reshape(n, -1).sum(axis=1) for v in per_output], 1)
    magnitude = np.stack([np.abs(np.asarray(v, np.float64)).reshape(n, -1).sum(1) for v in per_output], 1)
    rounding = CANCELLATION_ULPS * np.finfo(np.asarray(per_output[0]).dtype).eps * magnitude
    target = fx - fb
    gap = np.maximum(np.abs(total - target) - rounding, 0.0) / (np.abs(target) + np.abs(target).mean())
    spread = max(float(np.concatenate([fx, np.asarray(forward(background))]).std(axis=0).max()), 1e-30)
    return ZooResult(float(gap.max()), float(np.abs(target).mean() / spread), seconds)


def check(result: ZooResult) -> None:
    """The zoo's assertions: a meaningful output change, explained additively."""
    assert result.relative_change > MIN_RELATIVE_CHANGE, (
        f"the outputs barely depend on the input (mean change {result.relative_change:.2e} of their "
        "spread): fit the model's statistics on photos or scale its head"
    )
    assert result.gap < RTOL, f"additivity gap {result.gap:.2e} of the output change"
