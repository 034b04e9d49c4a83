"""The PyTorch adapter: model forms, conversion, forward passes and output gradients, layers and hooks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from deepshap.frameworks import load_adapter  # noqa: E402
from tests.helpers.data import rng_data  # noqa: E402
from tests.helpers.torch_models import (  # noqa: E402
    torch_cnn,
    torch_ignores_input,
    torch_mlp,
    torch_two_input,
)

X6 = rng_data((5, 6), seed=1)
BG6 = rng_data((7, 6), seed=2)


def _torch(x: np.ndarray):
    import torch

    return torch.from_numpy(x)


def test_torch_forward_matches_model_and_sees_1d_output_as_one_column():
    import torch

    model = torch_mlp()
    adapter = load_adapter(model, BG6)
    assert (adapter.framework, adapter.multi_input, adapter.n_inputs, adapter.n_outputs) == (
        "torch",
        False,
        1,
        3,
    )
    assert not adapter.single_output
    xs = adapter.to_inputs(X6)
    with torch.no_grad():
        np.testing.assert_allclose(
            adapter.to_numpy(adapter.forward(xs)), model(_torch(X6)).numpy(), rtol=1e-6
        )

    class Scalar(torch.nn.Module):
        def forward(self, x):
            return model(x)[:, 0]

    scalar = load_adapter(Scalar(), BG6)
    assert scalar.single_output and scalar.n_outputs == 1
    assert tuple(scalar.forward(scalar.to_inputs(X6)).shape) == (5, 1)


def test_torch_output_gradients_equal_jacobian_rows():
    import torch

    model = torch_mlp()
    adapter = load_adapter(model, BG6)
    index = np.array([[2, 0], [1, 1], [0, 2], [2, 2], [1, 0]])
    (grads,) = adapter.output_gradients(adapter.to_inputs(X6), index)
    assert tuple(grads.shape) == (5, 2, 6)
    for b in range(5):
        jac = torch.autograd.functional.jacobian(model, _torch(X6[b : b + 1]))[0, :, 0]  # (K, 6)
        np.testing.assert_allclose(grads[b].numpy(), jac[index[b]].numpy(), rtol=1e-5, atol=1e-6)


def test_torch_two_inputs_as_list_and_tensor_inputs():
    import torch

    model = torch_two_input()
    a, b = rng_data((4, 5), 3), rng_data((4, 4), 4)
    adapter = load_adapter(model, [a, _torch(b)])
    assert adapter.multi_input and adapter.n_inputs == 2
    xs = adapter.to_inputs([_torch(a[:2]), b[:2]])
    with torch.no_grad():
        expected = model(_torch(a[:2]), _torch(b[:2])).numpy()
    np.testing.assert_allclose(adapter.to_numpy(adapter.forward(xs)), expected, rtol=1e-6)
    grads = adapter.output_gradients(xs, np.tile(np.arange(3), (2, 1)))
    assert [tuple(g.shape) for g in grads] == [(2, 3, 5), (2, 3, 4)]


def test_torch_layer_pair_explains_the_layer_input_and_leaves_no_hooks():
    import torch

    model = torch_cnn()
    layer = model[2]
    bg, x = rng_data((6, 1, 8, 8), 5), rng_data((3, 1, 8, 8), 6)
    adapter = load_adapter((model, layer), bg)
    assert not adapter.multi_input and adapter.n_inputs == 1
    with torch.no_grad():
        expected_bg = model[:2](_torch(bg))
        expected_out = model(_torch(x))
    np.testing.assert_allclose(adapter.background[0].numpy(), expected_bg.numpy(), rtol=1e-6)
    z = adapter.explained_inputs(adapter.to_inputs(x))
    np.testing.assert_allclose(
        adapter.to_numpy(adapter.forward(z)), expected_out.numpy(), rtol=1e-5, atol=1e-6
    )
    (grads,) = adapter.output_gradients(z, np.zeros((3, 1), dtype=np.int64))
    zz = z[0].clone().requires_grad_(True)
    model[2:](zz)[:, 0].sum().backward()
    np.testing.assert_allclose(grads[:, 0].numpy(), zz.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert not layer._forward_pre_hooks and not layer._forward_hooks
    with pytest.raises(RuntimeError):  # a failing forward pass must not leave the hook behind
        adapter.forward([torch.zeros(2, 5, 8, 8)])
    assert not layer._forward_pre_hooks
    assert torch.is_grad_enabled()


def test_torch_layer_must_belong_to_the_model():
    import torch

    with pytest.raises(ValueError, match="not a submodule"):
        load_adapter((torch_cnn(), torch.nn.ReLU()), rng_data((2, 1, 8, 8)))


def test_torch_model_is_put_in_eval_mode():
    model = torch_mlp().train()
    load_adapter(model, BG6)
    assert not model.training


def test_torch_output_that_ignores_the_input_is_reported():
    adapter = load_adapter(torch_ignores_input(), rng_data((3, 4)))
    with pytest.raises(ValueError, match="does not depend on its input"):
        adapter.output_gradients(adapter.to_inputs(rng_data((2, 4))), np.zeros((2, 1), dtype=np.int64))


def test_wrong_number_of_inputs_is_named():
    adapter = load_adapter(torch_two_input(), [rng_data((3, 5)), rng_data((3, 4))])
    with pytest.raises(ValueError, match="X has 1 inputs but the model was given background data for 2"):
        adapter.to_inputs([rng_data((3, 5))])
    with pytest.raises(ValueError, match="must be a list of 2 arrays"):
        adapter.to_inputs(rng_data((3, 5)))
    with pytest.raises(ValueError, match=r"X\[1\] has 2 samples but X\[0\] has 3"):
        adapter.to_inputs([rng_data((3, 5)), rng_data((2, 4))])


def test_torch_layer_forward_runs_the_part_before_the_layer_on_one_row_only_when_equivalent():
    import torch
    from torch import nn

    cnn = torch_cnn()
    assert load_adapter((cnn, cnn[2]), rng_data((6, 1, 8, 8), 5))._one_row_carrier

    class ReadsBatchSize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = nn.Linear(6, 4), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch = x.shape[0]
            return self.second(torch.tanh(self.first(x))).reshape(batch, -1)

    torch.manual_seed(0)
    model = ReadsBatchSize().eval()
    adapter = load_adapter((model, model.second), BG6)
    assert not adapter._one_row_carrier
    z = adapter.explained_inputs(adapter.to_inputs(X6))
    np.testing.assert_allclose(adapter.to_numpy(adapter.forward(z)), _torch_outputs_of(model, X6), rtol=1e-6)


def _torch_outputs_of(model, x):
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()
