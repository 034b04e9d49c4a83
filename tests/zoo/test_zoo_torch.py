"""The PyTorch zoo: real architectures from Hugging Face transformers (vision models on photos, text
encoders through ``inputs_embeds``, decoder-only and state-space language models at their last position),
tiny and random, each explained by DeepExplainer and additive within 1e-4 of its output change, or
failing with an error that names the op.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.helpers.zoo import check, explain

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.helpers import zoo_torch as B  # noqa: E402

# the slowest on two shared cores (seconds of tracing and many ops); CI runs them too
_SLOW = {"MobileViT", "MobileNetV1", "MobileNetV2", "EfficientNet", "LeViT", "SegFormer", "Swinv2", "Qwen2"}


def _params() -> list[Any]:
    params = []
    for name in B.ALL:
        marks = [pytest.mark.slow] if name in _SLOW else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _params())
def test_transformers_architecture_is_additive(name: str) -> None:
    import torch

    case = B.ALL[name]()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return case.model(torch.from_numpy(x)).numpy()

    check(explain(case.model, case.background, case.X, forward))
