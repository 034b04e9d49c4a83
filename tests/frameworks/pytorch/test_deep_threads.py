"""DeepExplainer called from several threads on one model.

An explanation changes the model for its duration (its parameters out of the graph, registered modules'
forward routed through the rule table): explanations of one model in several threads must not undo each
other's changes half way.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from tests.helpers.torch_deep import tensor_data  # noqa: E402


class Paced(nn.Module):
    """A small network whose first forward within an explanation's passes (under DeepExplainer's torch
    function mode) in thread "a" waits, up to a second, for thread "b" to be at the same point, and whose
    first one in "b" waits for "a" to have finished: thread "b" explains while "a" ends its
    explanation, unless explanations of one model take turns."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)
        self.a_inside, self.b_inside, self.a_done = threading.Event(), threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        thread = threading.current_thread().name if torch.overrides.has_torch_function((x,)) else ""
        if thread == "a" and not self.a_inside.is_set():
            self.a_inside.set()
            self.b_inside.wait(timeout=1.0)
        elif thread == "b" and not self.b_inside.is_set():
            self.b_inside.set()
            self.a_done.wait(timeout=30.0)
        return self.out(torch.relu(self.hidden(x)))


def test_threads_explaining_one_model_take_turns() -> None:
    bg, X = tensor_data((10, 6), 1), tensor_data((4, 6), 2)
    model = Paced().eval()
    expected = np.stack(deepshap.DeepExplainer(model, bg).shap_values(X), -1)
    explainers = {name: deepshap.DeepExplainer(model, bg) for name in "ab"}  # built here, not paced
    values: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def explain(name: str) -> None:
        try:
            values[name] = np.stack(explainers[name].shap_values(X), -1)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            if name == "a":
                model.a_done.set()

    a = threading.Thread(target=explain, args=("a",), name="a")
    b = threading.Thread(target=explain, args=("b",), name="b")
    a.start()
    assert model.a_inside.wait(timeout=30.0)
    b.start()
    a.join(timeout=60.0)
    b.join(timeout=60.0)
    assert not errors, errors
    for name in "ab":
        np.testing.assert_allclose(values[name], expected, rtol=1e-6, atol=1e-7)
    assert all(p.requires_grad for p in model.parameters())
