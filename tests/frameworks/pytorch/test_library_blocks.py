"""Blocks of torchvision and timm classifiers that DeepExplainer once refused, rebuilt in plain torch.

Each failure found by explaining the libraries' architectures (random weights) gets its block here,
without torchvision or timm: the fused ``addcmul`` of ResMLP's affine layers and ConvNeXt V2's global
response norm, and the bidirectional LSTMs of Sequencer2D (and so every ``nn.LSTM``, ``nn.GRU``,
``nn.RNN`` and their cells). Additivity is recomputed here against ``f(x) - E f(background)``, and the
decompositions are checked against the operations they stand for. A ``torch.compile``'d model, as timm's
training scripts leave it, is explained as the module it wraps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import deepshap  # noqa: E402
from deepshap.errors import UnsupportedOperationError  # noqa: E402
from deepshap.frameworks.pytorch import decompositions, recurrent  # noqa: E402
from deepshap.frameworks.pytorch.registry import RULES  # noqa: E402
from deepshap.rules import Rule  # noqa: E402

RTOL = 1e-4


def _data(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _assert_additive(model: nn.Module, background: torch.Tensor, X: torch.Tensor) -> None:
    """``sum(phi) == f(x) - E f(background)`` for every output, within RTOL of the mean change."""
    model = model.eval()
    values = deepshap.DeepExplainer(model, background).shap_values(X, check_additivity=False)
    with torch.no_grad():
        target = (model(X).double() - model(background).double().mean(0)).numpy()
    per_output = values if isinstance(values, list) else [values]
    total = np.stack([np.asarray(v, np.float64).reshape(len(X), -1).sum(1) for v in per_output], 1)
    assert np.abs(target).mean() > 1e-3, "the test model gives no signal"
    gap = np.abs(total - target).max() / np.abs(target).mean()
    assert gap < RTOL, gap


# --- addcmul and addcdiv ---------------------------------------------------------------------------
class ResMLPBlock(nn.Module):
    """ResMLP's block: ``Affine`` layers (``addcmul(beta, alpha, x)``), token mixing along the patches
    and a channel MLP, with layer scale."""

    def __init__(self, tokens: int = 4, dim: int = 6) -> None:
        super().__init__()
        self.alpha1, self.beta1 = nn.Parameter(torch.randn(dim)), nn.Parameter(torch.randn(dim))
        self.alpha2, self.beta2 = nn.Parameter(torch.randn(dim)), nn.Parameter(torch.randn(dim))
        self.mix = nn.Linear(tokens, tokens)
        self.mlp = nn.Sequential(nn.Linear(dim, 12), nn.GELU(), nn.Linear(12, dim))
        self.scale1, self.scale2 = (
            nn.Parameter(torch.full((dim,), 0.5)),
            nn.Parameter(torch.full((dim,), 0.5)),
        )
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.mix(torch.addcmul(self.beta1, self.alpha1, x).transpose(1, 2)).transpose(1, 2)
        x = x + self.scale1 * mixed
        x = x + self.scale2 * self.mlp(torch.addcmul(self.beta2, self.alpha2, x))
        return self.head(x.mean(1))


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN, channels last: ``x + addcmul(bias, weight, x * n)`` where ``n`` is the
    spatial L2 norm of ``x`` over its mean across channels (a product of two input-dependent tensors)."""

    def __init__(self, channels: int = 5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 1, 1, channels))
        self.bias = nn.Parameter(torch.randn(1, 1, 1, channels))
        self.conv = nn.Conv2d(3, channels, 3)
        self.head = nn.Linear(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        norm = x.norm(p=2, dim=(1, 2), keepdim=True)
        n = norm / (norm.mean(dim=-1, keepdim=True) + 1e-6)
        x = x + torch.addcmul(self.bias, self.weight, x * n)
        return self.head(x.mean((1, 2)))


class FusedUpdates(nn.Module):
    """``addcmul`` and ``addcdiv``: every argument from the input, a ``value``, as methods, in place."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        a = torch.addcmul(x, h, torch.tanh(h), value=0.5)
        b = h.addcdiv(x, 1 + torch.sigmoid(h), value=-2)
        c = torch.relu(h)
        c.addcmul_(x, torch.sigmoid(h), value=1.5)
        d = h.clone()
        d.addcdiv_(a, torch.exp(x))
        return torch.cat([a, b, c, d], 1)


@pytest.mark.parametrize(
    "build, shape",
    [(ResMLPBlock, (4, 6)), (GlobalResponseNorm, (3, 6, 6)), (FusedUpdates, (6,))],
    ids=["resmlp-affine", "convnextv2-grn", "addcmul-addcdiv"],
)
def test_fused_multiply_add_blocks_are_additive(
    build: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    _assert_additive(build(), _data((4, *shape), 1), _data((3, *shape), 2))


def test_addcmul_and_addcdiv_decompositions_compute_the_operations() -> None:
    x, a, b = _data((3, 4), 3), _data((3, 4), 4), _data((3, 4), 5).exp()
    torch.testing.assert_close(
        decompositions.addcmul(x, a, b, value=-0.5), torch.addcmul(x, a, b, value=-0.5)
    )
    torch.testing.assert_close(decompositions.addcdiv(x, a, b, value=3), torch.addcdiv(x, a, b, value=3))
    y = x.clone()
    assert decompositions.addcmul_(y, a, b) is y
    torch.testing.assert_close(y, x.addcmul(a, b))
    y = x.clone()
    decompositions.addcdiv_(y, a, b, value=2)
    torch.testing.assert_close(y, x.addcdiv(a, b, value=2))


# --- recurrent layers ------------------------------------------------------------------------------
class LastStep(nn.Module):
    """A recurrent layer over ``(batch, time, features)`` and a linear head on its last output."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.head = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not getattr(self.layer, "batch_first", True):
            x = x.transpose(0, 1)
        out = self.layer(x)[0]
        return self.head(out[:, -1] if getattr(self.layer, "batch_first", True) else out[-1])


class CellLoop(nn.Module):
    """A cell (``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell``) run over the time axis."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell
        self.head = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = None
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
        return self.head(state[0] if isinstance(state, tuple) else state)


class Sequencer2DBlock(nn.Module):
    """Sequencer2D's mixing: a bidirectional LSTM along the rows and one along the columns of a
    channels-last map, concatenated and fused by a linear layer, in a residual block."""

    def __init__(self, dim: int = 4, hidden: int = 3) -> None:
        super().__init__()
        self.rows = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.columns = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.fuse = nn.Linear(4 * hidden, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        y = self.norm(x)
        along_w = self.rows(y.reshape(b * h, w, c))[0].reshape(b, h, w, -1)
        along_h = self.columns(y.transpose(1, 2).reshape(b * w, h, c))[0].reshape(b, w, h, -1).transpose(1, 2)
        x = x + self.fuse(torch.cat([along_w, along_h], -1))
        return self.head(x.mean((1, 2)))


_RECURRENT = {
    "lstm-2-layers-bidirectional": lambda: LastStep(
        nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True)
    ),
    "lstm-projection-time-first": lambda: LastStep(nn.LSTM(4, 6, proj_size=3)),
    "gru-2-layers-bidirectional": lambda: LastStep(
        nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True)
    ),
    "rnn-tanh": lambda: LastStep(nn.RNN(4, 5, batch_first=True)),
    "rnn-relu-no-bias": lambda: LastStep(nn.RNN(4, 5, nonlinearity="relu", bias=False, batch_first=True)),
    "lstm-cell": lambda: CellLoop(nn.LSTMCell(4, 5)),
    "gru-cell": lambda: CellLoop(nn.GRUCell(4, 5)),
    "rnn-relu-cell": lambda: CellLoop(nn.RNNCell(4, 5, nonlinearity="relu")),
}


@pytest.mark.parametrize("name", list(_RECURRENT))
def test_recurrent_layers_are_additive(name: str) -> None:
    torch.manual_seed(0)
    model = _RECURRENT[name]()
    X = _data((3, 5, 4), 2)
    model(X)  # materialise the lazy head
    _assert_additive(model, _data((4, 5, 4), 1), X)


def test_sequencer2d_block_is_additive() -> None:
    torch.manual_seed(0)
    _assert_additive(Sequencer2DBlock(), _data((4, 3, 3, 4), 1), _data((2, 3, 3, 4), 2))


@pytest.mark.parametrize(
    "layer",
    [
        nn.LSTM(4, 5, num_layers=2, bidirectional=True),
        nn.LSTM(4, 6, proj_size=3, batch_first=True),
        nn.GRU(4, 5, num_layers=2, bidirectional=True, bias=False),
        nn.RNN(4, 5, nonlinearity="relu", batch_first=True),
    ],
    ids=["lstm", "lstm-projection", "gru", "rnn-relu"],
)
def test_recurrent_decomposition_computes_the_layer(layer: nn.Module) -> None:
    """The decomposition returns what ``torch.lstm`` and the others return, final states included."""
    torch.manual_seed(0)
    x = _data((3, 5, 4) if layer.batch_first else (5, 3, 4), 3)  # 3 sequences of 5 steps (unchecked by torch)
    directions = 2 if layer.bidirectional else 1
    states = layer.num_layers * directions
    h0 = _data((states, 3, getattr(layer, "proj_size", 0) or layer.hidden_size), 4)
    hx = (h0, _data((states, 3, layer.hidden_size), 5)) if isinstance(layer, nn.LSTM) else h0
    flags = (layer.bias, layer.num_layers, 0.0, False, layer.bidirectional, layer.batch_first)
    op = {nn.LSTM: torch.lstm, nn.GRU: torch.gru, nn.RNN: torch.rnn_relu}[type(layer)]
    with torch.no_grad():
        expected = op(x, hx, layer._flat_weights, *flags)
        got = getattr(recurrent, op.__name__)(x, hx, layer._flat_weights, *flags)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_recurrent_cells_compute_the_cells() -> None:
    x, h, c = _data((3, 4), 1), _data((3, 5), 2), _data((3, 5), 3)
    with torch.no_grad():
        lstm = nn.LSTMCell(4, 5)
        for g, e in zip(
            recurrent.lstm_cell(x, (h, c), *lstm._parameters.values()), lstm(x, (h, c)), strict=True
        ):
            torch.testing.assert_close(g, e)
        gru = nn.GRUCell(4, 5, bias=False)
        torch.testing.assert_close(recurrent.gru_cell(x, h, gru.weight_ih, gru.weight_hh), gru(x, h))
        rnn = nn.RNNCell(4, 5)
        torch.testing.assert_close(recurrent.rnn_tanh_cell(x, h, *rnn._parameters.values()), rnn(x, h))


def test_every_recurrent_function_is_the_rule_of_its_torch_namesake() -> None:
    for name in recurrent.__all__:
        rule = RULES[getattr(torch, name)]
        assert rule.kind is Rule.DECOMPOSE and rule.apply is getattr(recurrent, name), name


def test_packed_sequences_and_dropout_between_layers_raise() -> None:
    """``torch.lstm(data, batch_sizes, ...)`` (a packed sequence) and dropout in training mode, which the
    decompositions cannot follow, raise naming them."""
    layer = nn.LSTM(4, 5, num_layers=2, dropout=0.5, batch_first=True)
    x, batch_sizes = _data((6, 4), 1), torch.tensor([3, 2, 1])
    with pytest.raises(UnsupportedOperationError, match="packed sequence"):
        recurrent.lstm(x, batch_sizes, [], layer._flat_weights, True, 2, 0.0, False, False)
    with pytest.raises(UnsupportedOperationError, match="packed sequence"):
        recurrent.gru(x, batch_sizes, _data((2, 3, 5), 2), layer._flat_weights, True, 2, 0.0, False, False)
    hx = [_data((2, 3, 5), 3), _data((2, 3, 5), 4)]
    with pytest.raises(UnsupportedOperationError, match="dropout"):
        recurrent.lstm(_data((3, 5, 4), 5), hx, layer._flat_weights, True, 2, 0.5, True, False, True)


def test_packing_a_sequence_in_the_model_raises_naming_the_operation() -> None:
    """Packing calls a torch function that torch's own name table leaves out: the error names it by its
    module and name, not by its repr."""

    class Packed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 5, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lengths = torch.full((x.shape[0],), x.shape[1])
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
            return self.lstm(packed)[1][0][0]

    explainer = deepshap.DeepExplainer(Packed(), _data((3, 5, 4), 1))
    with pytest.raises(UnsupportedOperationError, match=r"rule for torch\._pack_padded_sequence,"):
        explainer.shap_values(_data((2, 5, 4), 2))


# --- compiled models -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_a_compiled_model_is_explained_as_its_eager_original(backend: str) -> None:
    """``torch.compile(model)`` (as timm's training scripts leave it) hides the operations from the rules
    and rejects repeated backward passes: both explainers explain the module it wraps."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)
    ).eval()
    compiled = torch.compile(model, backend=backend)
    background, X = _data((4, 3, 8, 8), 1), _data((2, 3, 8, 8), 2)
    expected = deepshap.DeepExplainer(model, background).shap_values(X)
    got = deepshap.DeepExplainer(compiled, background).shap_values(X)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    layer_values = deepshap.DeepExplainer((compiled, model[2]), background).shap_values(X)
    assert np.asarray(layer_values).shape[-3:] == (4, 6, 6)
    gradients = deepshap.GradientExplainer(compiled, background).shap_values(X, nsamples=8)
    assert np.isfinite(np.asarray(gradients)).all()
