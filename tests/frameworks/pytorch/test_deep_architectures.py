"""DeepExplainer on PyTorch models: additivity on modern architectures, agreement with shap, exactness.

Every model is small and seeded. ``_additive`` recomputes ``sum(phi) == f(x) - E f(b)`` here (with the
explainer's own check switched off), so the property is asserted by the test, not only by the library.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import deepshap
from deepshap.frameworks.pytorch.deep import UnsupportedOperationError

RTOL = 1e-4


def _data(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _outputs(model: nn.Module, inputs: list[torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        out = model(*inputs)
    out = out.reshape(out.shape[0], -1)
    return out.double().numpy()


def _additive(model: nn.Module, bg, X, batch_size: int = 256, **kwargs) -> list[np.ndarray]:
    """Explain X against bg and assert additivity for every output; return per-input (N, *shape, K)."""
    torch.manual_seed(0)
    model = model.eval()
    explainer = deepshap.DeepExplainer(model, bg, batch_size=batch_size)
    explanation = explainer(X, check_additivity=False, **kwargs)
    explanations = explanation if isinstance(explanation, list) else [explanation]
    inputs = X if isinstance(X, list) else [X]
    backgrounds = bg if isinstance(bg, list) else [bg]
    fx = _outputs(model, inputs)
    efb = _outputs(model, backgrounds).mean(0)
    values = [np.asarray(e.values, dtype=np.float64) for e in explanations]
    if values[0].ndim == inputs[0].dim():  # single output: no trailing axis
        values = [v[..., None] for v in values]
    total = sum(v.reshape(v.shape[0], -1, v.shape[-1]).sum(1) for v in values)
    target = fx - efb
    scale = np.maximum(np.abs(fx), np.abs(efb))
    scale = scale + scale.mean()
    assert np.all(np.abs(total - target) <= RTOL * scale), np.abs(total - target).max()
    assert np.abs(total).max() > 1e-6, "the test model gives no signal"
    return values


# models -----------------------------------------------------------------------------------------
class FunctionalNet(nn.Module):
    """F.relu, F.max_pool2d and a sigmoid gate, all functional."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.gate = nn.Conv2d(2, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x)) * torch.sigmoid(self.gate(x))
        h = F.max_pool2d(h, 2)
        return self.fc(torch.flatten(h, 1))


class ReusedNet(nn.Module):
    """One nn.ReLU and one nn.MaxPool2d (overlapping windows) used several times."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (
            nn.Conv2d(1, 4, 3, padding=1),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.Conv2d(4, 4, 1),
        )
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.c1(x)))
        x = self.pool(self.relu(self.c2(x)))
        x = self.pool(self.relu(self.c3(x)))
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv-bn-ReLU(inplace)-conv-bn, ``out += identity``, ReLU(inplace)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNetTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def _randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics so that eval batch norm is a real affine map."""
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    return model


class TinyViT(nn.Module):
    """Patch embedding, nn.MultiheadAttention, LayerNorm and a GELU MLP (pre-norm transformer block)."""

    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.pos = nn.Parameter(torch.randn(1, 4, 16) * 0.1)
        self.norm1 = nn.LayerNorm(16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.norm2 = nn.LayerNorm(16)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        h = self.norm1(tokens)
        if not self.batch_first:
            h = h.transpose(0, 1)
        attended, _ = self.attn(h, h, h)
        if not self.batch_first:
            attended = attended.transpose(0, 1)
        tokens = tokens + attended
        tokens = tokens + self.mlp(self.norm2(tokens))
        return self.head(tokens.mean(1))


class SDPANet(nn.Module):
    """F.scaled_dot_product_attention (causal and with a float mask) with tanh-GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, 2, 4).permute(2, 0, 3, 1, 4)
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = torch.linspace(-1, 0, t * t).reshape(t, t)
        masked = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = F.gelu(causal + masked, approximate="tanh").transpose(1, 2).reshape(b, t, 8)
        return self.out(h.mean(1))


def _mlp(activation: nn.Module, n_in: int = 6, n_out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 12), activation, nn.Linear(12, 12), activation, nn.Linear(12, n_out))


class DepthwiseTransposed(nn.Module):
    """Depthwise conv, GroupNorm, transposed conv and bilinear interpolation."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(4, 8, 1)
        self.gn = nn.GroupNorm(2, 8)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.gn(self.pw(F.relu6(self.dw(x)))))
        h = F.interpolate(h, scale_factor=0.75, mode="bilinear", align_corners=False)
        h = self.up(h)
        return self.fc(h.flatten(1))


class SoftmaxHead(nn.Module):
    def __init__(self, log: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        return F.log_softmax(z, dim=1) if self.log else torch.softmax(z, dim=-1)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(5, 8)
        self.b = nn.Conv1d(2, 4, 3)
        self.head = nn.Linear(8 + 4 * 4, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ha = torch.tanh(self.a(a))
        hb = F.elu(self.b(b)).flatten(1)
        return self.head(torch.cat([ha * ha.sigmoid(), hb], 1))


# additivity -------------------------------------------------------------------------------------
def test_functional_relu_maxpool_and_sigmoid_gate() -> None:
    torch.manual_seed(0)
    _additive(FunctionalNet(), _data((12, 2, 8, 8), 1), _data((3, 2, 8, 8), 2))


def test_reused_relu_and_maxpool_modules() -> None:
    torch.manual_seed(0)
    _additive(ReusedNet(), _data((10, 1, 12, 12), 1), _data((3, 1, 12, 12), 2))


def test_residual_block_inplace_relu_and_batchnorm() -> None:
    torch.manual_seed(0)
    _additive(_randomize_batchnorm(ResNetTiny()), _data((8, 3, 8, 8), 1), _data((2, 3, 8, 8), 2))


def test_batchnorm1d_mlp() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.LeakyReLU(0.1), nn.Linear(10, 3))
    _additive(_randomize_batchnorm(model), _data((16, 6), 1), _data((4, 6), 2))


@pytest.mark.parametrize("batch_first", [True, False])
def test_vit_block_multihead_attention_layernorm_gelu(batch_first: bool) -> None:
    torch.manual_seed(0)
    _additive(TinyViT(batch_first), _data((6, 3, 8, 8), 1), _data((3, 3, 8, 8), 2))


def test_scaled_dot_product_attention() -> None:
    torch.manual_seed(0)
    _additive(SDPANet(), _data((6, 5, 8), 1), _data((3, 5, 8), 2))


@pytest.mark.parametrize(
    "activation",
    [
        nn.SiLU(),
        nn.Mish(),
        nn.Hardswish(),
        nn.ReLU6(),
        nn.ELU(),
        nn.SELU(),
        nn.CELU(0.7),
        nn.Softplus(2.0),
        nn.Hardsigmoid(),
        nn.Hardtanh(-0.5, 0.5),
        nn.Tanh(),
        nn.GELU(),
        nn.LeakyReLU(0.2),
        nn.Softsign(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_unary_activations(activation: nn.Module) -> None:
    _additive(_mlp(activation), _data((10, 6), 1), _data((4, 6), 2))


class ElementwiseZoo(nn.Module):
    """exp, log, sqrt, rsqrt, square, pow, abs, clamp, division, maximum/minimum and amax on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        pos = h.abs() + 0.5
        h = torch.exp(h * 0.3) + torch.log(pos) + pos.sqrt() - torch.rsqrt(pos) + h.square() * 0.1
        h = h + pos**1.5 + 2.0 ** h.clamp(-1, 1) + torch.clamp(h, min=-0.3)
        h = h / pos + 1.0 / (pos + 1) + torch.maximum(h, -h * 0.5) - torch.minimum(h, pos)
        h = h + h.amax(dim=1, keepdim=True) + torch.max(h, dim=1).values[:, None] + h.pow(pos * 0.1)
        h = torch.cat([h[:, :4] * torch.logsumexp(h, 1, keepdim=True), F.rms_norm(h[:, 4:], (4,))], 1)
        return self.out(h)


def test_elementwise_zoo() -> None:
    torch.manual_seed(0)
    _additive(ElementwiseZoo(), _data((10, 6), 1), _data((4, 6), 2))


class Composites(nn.Module):
    """glu, var, std, vector norms, F.normalize and instance norm, decomposed into primitives."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 8)
        self.conv = nn.Conv1d(2, 4, 1)
        self.inorm = nn.InstanceNorm1d(4, affine=True)
        self.out = nn.Linear(8 + 4 + 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        stats = torch.stack(
            [h.var(1), h.std(1, unbiased=False), h.norm(dim=1), torch.linalg.vector_norm(h, 1, dim=1)], 1
        )
        g = F.normalize(F.glu(torch.cat([h, h * 0.5], 1), dim=1), dim=1)
        seq = self.inorm(self.conv(h.reshape(-1, 2, 4))).flatten(1)
        return self.out(torch.cat([g, stats, seq], 1))


def test_composites_are_decomposed() -> None:
    torch.manual_seed(0)
    _additive(Composites(), _data((10, 6), 1), _data((3, 6), 2))


def test_depthwise_groupnorm_transposed_conv_bilinear_interpolate() -> None:
    torch.manual_seed(0)
    _additive(DepthwiseTransposed(), _data((6, 4, 4, 4), 1), _data((2, 4, 4, 4), 2))


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_and_log_softmax_outputs(log: bool) -> None:
    torch.manual_seed(0)
    _additive(SoftmaxHead(log), _data((12, 6), 1), _data((3, 6), 2))


class ScaledLogits(nn.Module):
    """Identity logits through softmax, log_softmax or logsumexp."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "logsumexp":
            return torch.logsumexp(z, 1, keepdim=True)
        return torch.softmax(z, 1) if self.kind == "softmax" else torch.log_softmax(z, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("gap", [20.0, 100.0, 1000.0])
def test_softmax_of_logits_far_from_the_references_adds_up(gap: float, kind: str, dtype: torch.dtype) -> None:
    """A confident sample: its top logit exceeds every reference logit by ``gap``. A quotient of the two
    sides' sums of exponentials lost the whole change at 20 (float32) and gave NaN from about 90."""
    background = torch.tensor([[0.0, 0.3, -0.2], [0.1, 0.0, 0.0]], dtype=dtype)
    X = torch.tensor([[gap, 0.5, 0.0], [0.2, gap / 2, -gap]], dtype=dtype)
    values = _additive(ScaledLogits(kind), background, X)
    assert np.isfinite(values[0]).all()


def test_two_input_model() -> None:
    torch.manual_seed(0)
    bg = [_data((8, 5), 1), _data((8, 2, 6), 2)]
    X = [_data((3, 5), 3), _data((3, 2, 6), 4)]
    values = _additive(TwoInputs(), bg, X)
    assert [v.shape for v in values] == [(3, 5, 3), (3, 2, 6, 3)]


class SeqFirstTransformer(nn.Module):
    """nn.TransformerEncoder in its default (sequence, batch, feature) layout, GELU, eval-mode dropout."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(5 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x.transpose(0, 1)).transpose(0, 1).flatten(1))


def test_transformer_encoder_sequence_first() -> None:
    torch.manual_seed(0)
    _additive(SeqFirstTransformer(), _data((6, 5, 16), 1), _data((3, 5, 16), 2))


def test_conv1d_conv3d_and_other_poolings() -> None:
    torch.manual_seed(0)
    one_d = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.Tanh(), nn.MaxPool1d(2), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(8, 2)
    )
    _additive(one_d, _data((6, 2, 10), 1), _data((2, 2, 10), 2))
    three_d = nn.Sequential(
        nn.Conv3d(1, 2, 2), nn.ReLU(), nn.AdaptiveMaxPool3d(2), nn.Flatten(), nn.Linear(16, 2)
    )
    _additive(three_d, _data((6, 1, 4, 4, 4), 1), _data((2, 1, 4, 4, 4), 2))


def test_chunking_does_not_change_the_result() -> None:
    """Small batches (background split, one sample per chunk) give the same values as one big batch."""
    torch.manual_seed(0)
    model, bg, X = ReusedNet().eval(), _data((10, 1, 12, 12), 1), _data((3, 1, 12, 12), 2)
    big = deepshap.DeepExplainer(model, bg, batch_size=1000).shap_values(X)
    small = deepshap.DeepExplainer(model, bg, batch_size=4).shap_values(X)
    np.testing.assert_allclose(np.asarray(big), np.asarray(small), rtol=1e-4, atol=1e-6)


class _Pick(nn.Module):
    """One output of a model, so its explanation takes a single backward pass over a fresh graph."""

    def __init__(self, model: nn.Module, k: int) -> None:
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.k : self.k + 1]


def test_outputs_explained_together_equal_outputs_explained_alone() -> None:
    """The backward passes over one retained graph (one per output) do not leak into each other.

    The rules start right at the input (relu, max-pool), so their gradients reach the input directly.
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(48, 4),
        nn.Softmax(1),
    ).eval()
    bg, X = _data((6, 1, 12, 12), 1), _data((2, 1, 12, 12), 2)
    together = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))  # (4, N, 1, 12, 12)
    alone = [deepshap.DeepExplainer(_Pick(model, k), bg).shap_values(X) for k in range(4)]
    assert np.abs(together).max() > 0
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-5, atol=1e-7)


# agreement and exactness -------------------------------------------------------------------------
class PlainCNN(nn.Module):
    """Separate modules per use, so shap's module hooks are exact on it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.r1, self.p1 = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)
        self.c2, self.r2, self.p2 = nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2)
        self.fc1, self.r3, self.fc2 = nn.Linear(8 * 5 * 5, 16), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.p2(self.r2(self.c2(self.p1(self.r1(self.c1(x))))))
        return self.fc2(self.r3(self.fc1(x.flatten(1))))


def test_agrees_with_shap_on_plain_relu_maxpool_cnn() -> None:
    import shap

    torch.manual_seed(0)
    model = PlainCNN().eval()
    bg, X = _data((16, 1, 28, 28), 1), _data((3, 1, 28, 28), 2)
    ours = np.asarray(deepshap.DeepExplainer(model, bg).shap_values(X))  # (10, N, 1, 28, 28)
    theirs = np.moveaxis(
        np.asarray(shap.DeepExplainer(model, bg).shap_values(X, check_additivity=False)), -1, 0
    )
    scale = np.abs(theirs).max()
    assert scale > 0
    assert np.abs(ours - theirs).max() <= 1e-4 * scale


def test_exact_on_a_linear_model() -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 3).eval()
    bg, X = _data((20, 6), 1), _data((4, 6), 2)
    values = deepshap.DeepExplainer(model, bg).shap_values(X)
    weight = model.weight.detach().numpy()
    for k in range(3):
        expected = (X.numpy() - bg.numpy().mean(0)) * weight[k]
        np.testing.assert_allclose(values[k], expected, rtol=1e-5, atol=1e-6)


def test_ranked_output_indexes_and_additivity() -> None:
    torch.manual_seed(0)
    model = SoftmaxHead(log=False).eval()
    bg, X = _data((12, 6), 1), _data((5, 6), 2)
    explainer = deepshap.DeepExplainer(model, bg)
    values, indexes = explainer.shap_values(X, ranked_output=2)
    full = explainer.shap_values(X)
    probs = _outputs(model, [X])
    np.testing.assert_array_equal(indexes, np.argsort(-probs, axis=1)[:, :2])
    for r in range(2):
        for i in range(5):
            np.testing.assert_allclose(values[r][i], full[indexes[i, r]][i], rtol=1e-5, atol=1e-7)
            explained = probs[i, indexes[i, r]] - explainer.expected_value[indexes[i, r]]
            assert abs(values[r][i].sum() - explained) <= RTOL * (abs(probs[i]).max() + 1)
    _, min_indexes = explainer.shap_values(X, ranked_outputs=1, output_rank_order="min")
    np.testing.assert_array_equal(min_indexes[:, 0], probs.argmin(1))


def test_explanation_carries_base_values_and_expected_value() -> None:
    torch.manual_seed(0)
    model = SoftmaxHead(log=True).eval()
    bg, X = _data((12, 6), 1), _data((4, 6), 2)
    explainer = deepshap.DeepExplainer(model, bg)
    explanation = explainer(X)
    expected = _outputs(model, [bg]).mean(0)
    np.testing.assert_allclose(explainer.expected_value, expected, rtol=1e-6)
    assert explanation.values.shape == (4, 6, 4)
    np.testing.assert_allclose(explanation.base_values, np.tile(expected, (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(explanation.data, X.numpy())


def test_module_layer_pair_explains_the_layer_input() -> None:
    torch.manual_seed(0)
    model = PlainCNN().eval()
    bg, X = _data((8, 1, 28, 28), 1), _data((2, 1, 28, 28), 2)
    explainer = deepshap.DeepExplainer((model, model.fc1), bg)
    values = explainer.shap_values(X)
    assert len(values) == 10 and values[0].shape == (2, 200)
    fx = _outputs(model, [X])
    for k in range(10):
        np.testing.assert_allclose(
            values[k].sum(1), fx[:, k] - explainer.expected_value[k], rtol=1e-4, atol=1e-5
        )


# errors -----------------------------------------------------------------------------------------
class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(self.lin(x), dim=1)


def test_unsupported_operation_raises_naming_it() -> None:
    explainer = deepshap.DeepExplainer(Unsupported().eval(), _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="cumprod"):
        explainer.shap_values(_data((2, 4), 2))


class Lambda(nn.Module):
    def __init__(self, fn) -> None:  # noqa: ANN001
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _in_place_masked_relu(x: torch.Tensor) -> torch.Tensor:
    h = x.clone()
    h.masked_fill_(h < 0, 0.0)
    return h


def _in_place_mask_product(x: torch.Tensor) -> torch.Tensor:
    h = x.clone()
    h *= h > 0
    return h


@pytest.mark.parametrize(
    ("written", "module"),
    [
        (lambda x: torch.where(x > 0, x, torch.zeros_like(x)), nn.ReLU()),
        (lambda x: torch.where(x > 0, x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: x.where(x > 0, 0.7 * (torch.exp(x) - 1)), nn.ELU(0.7)),
        (lambda x: torch.where(x > 0.3, x, 0.0), nn.Threshold(0.3, 0.0)),
        (lambda x: x.masked_fill(x < 0, 0.0), nn.ReLU()),
        (_in_place_masked_relu, nn.ReLU()),
        (lambda x: torch.where(x < 0, torch.tensor(0), x), nn.ReLU()),  # an int 0-dim branch
        (lambda x: x.masked_fill(x < 0, torch.tensor(0.0, dtype=torch.float64)), nn.ReLU()),
        (lambda x: torch.where((x > 0).unsqueeze(-1).squeeze(-1).clone(), x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: torch.where(F.relu(x).to(torch.bool), x, 0.2 * x), nn.LeakyReLU(0.2)),
        (lambda x: x * (x > 0), nn.ReLU()),
        (lambda x: (x > 0) * x, nn.ReLU()),
        (lambda x: torch.mul(x, x > 0.3), nn.Threshold(0.3, 0.0)),
        (_in_place_mask_product, nn.ReLU()),
    ],
    ids=[
        "relu",
        "leaky_relu",
        "elu_method",
        "threshold_scalar",
        "masked_fill",
        "masked_fill_",
        "int_branch",
        "float64_fill",
        "reshaped_condition",
        "condition_by_to_bool",
        "times_its_mask",
        "mask_times",
        "torch_mul_mask",
        "in_place_mask_product",
    ],
)
def test_activations_written_with_where_equal_the_activation(written, module) -> None:  # noqa: ANN001
    """A condition computed from the input: where the input and the reference take different branches,
    the rule is the rescale rule of the whole activation, so the values equal the module's."""
    bg, X = _data((6, 6), 1), _data((5, 6), 2)  # several samples and background rows per pass
    (by_where,) = _additive(_mlp(Lambda(written)), bg, X)
    (by_module,) = _additive(_mlp(module), bg, X)
    np.testing.assert_allclose(by_where, by_module, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("written", "name"),
    [
        (lambda x: x // 2, "__floordiv__"),
        (lambda x: x % 2, "remainder"),
    ],
    ids=["floordiv", "mod"],
)
def test_an_unsupported_binary_operator_raises_naming_it(written, name) -> None:  # noqa: ANN001
    """PyTorch turns a TypeError inside a binary operator into NotImplemented; the explainer's error (a
    TypeError too) must still reach the user with its message, not Python's "unsupported operand"."""
    explainer = deepshap.DeepExplainer(_mlp(Lambda(written)).eval(), _data((4, 6), 1))
    with pytest.raises(UnsupportedOperationError, match=name):
        explainer.shap_values(_data((2, 6), 2))


def test_where_with_a_condition_from_one_input_and_branches_from_another() -> None:
    """A broadcast (N, 1) condition choosing between two computed branches adds up; the output's change
    goes through the branches, so features read only by the condition get no credit (as documented)."""
    model = Lambda(lambda x: torch.where(x[:, :1] > x[:, 1:2], x[:, 2:] * 2.0, torch.tanh(x[:, 2:])))
    (values,) = _additive(nn.Sequential(model, nn.Linear(4, 2)), _data((4, 6), 3), _data((3, 6), 4))
    assert np.all(values[:, :2] == 0)
    assert np.abs(values[:, 2:]).min() > 1e-4


def test_a_step_written_with_where_raises_naming_it() -> None:
    step = Lambda(lambda x: torch.where(x > 0, 1.0, -1.0).sum(1, keepdim=True))
    explainer = deepshap.DeepExplainer(step, _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="where.*step function"):
        explainer.shap_values(_data((2, 4), 2))


def test_a_condition_that_flips_between_unchanged_values_raises() -> None:
    """Feature 1 is the same in the input and the reference; the condition on feature 0 flips."""
    model = Lambda(lambda x: torch.where(x[:, :1] > 0, x[:, 1:2], 2.0 * x[:, 1:2]))
    bg = torch.tensor([[-1.0, 0.5]])
    explainer = deepshap.DeepExplainer(model, bg)
    with pytest.raises(UnsupportedOperationError, match="step function"):
        explainer.shap_values(torch.tensor([[1.0, 0.5]]))


def test_a_mask_of_minus_inf_chosen_by_the_input_raises() -> None:
    model = Lambda(lambda x: torch.softmax(x.masked_fill(x < -0.5, float("-inf")), -1))
    explainer = deepshap.DeepExplainer(model, _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="masked_fill.*too large to split"):
        explainer.shap_values(_data((3, 4), 2))


def test_where_multipliers_neither_overflow_nor_underflow_in_half_precision() -> None:
    """dt^2 + de^2 overflows float16 at 300 and underflows at 3e-4: the rescale multiplier must survive."""
    from deepshap.frameworks.pytorch import deep_rules

    for x_value, r_value in [(200.0, -100.0), (2e-4, -1e-4)]:
        x = torch.tensor([x_value], dtype=torch.float16, requires_grad=True)
        r = torch.tensor([r_value], dtype=torch.float16)
        out, step = deep_rules.select(
            x.detach() > 0, r > 0, deep_rules.Pair(x, r), deep_rules.Pair(0.2 * x, 0.2 * r)
        )
        (multiplier,) = torch.autograd.grad(out.x.sum(), x)
        assert not step
        assert multiplier.item() == pytest.approx((x_value - 0.2 * r_value) / (x_value - r_value), rel=2e-3)


def test_an_index_cast_from_the_input_raises() -> None:
    """``to(torch.long)`` of the input is an index computed from it, not a constant."""
    model = Lambda(lambda x: x.gather(1, x.abs().clamp(max=3).to(torch.long)))
    explainer = deepshap.DeepExplainer(model, _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="data-dependent"):
        explainer.shap_values(_data((2, 4), 2))


def test_where_returning_indices_of_input_dependent_values_raises() -> None:
    model = Lambda(lambda x: x[torch.where(x > 0)].sum().reshape(1, 1) + 0 * x[:, :1])
    explainer = deepshap.DeepExplainer(model, _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="data-dependent"):
        explainer.shap_values(_data((2, 4), 2))


def test_training_mode_dropout_raises() -> None:
    class Dropping(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.dropout(x, 0.5, training=True).sum(1)

    explainer = deepshap.DeepExplainer(Dropping(), _data((4, 4), 1))
    with pytest.raises(UnsupportedOperationError, match="eval"):
        explainer.shap_values(_data((2, 4), 2))


def test_custom_autograd_function_fails_the_additivity_check() -> None:
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):  # noqa: ANN001, ANN205
            (x,) = ctx.saved_tensors
            return 3 * x**2 * grad

    class CubeNet(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Cube.apply(x).sum(1)

    explainer = deepshap.DeepExplainer(CubeNet(), _data((6, 3), 1))
    from deepshap.explainers.deep import AdditivityError

    with pytest.raises(AdditivityError, match="check_additivity=False"):
        explainer.shap_values(_data((2, 3), 2))
    assert explainer.shap_values(_data((2, 3), 2), check_additivity=False).shape == (2, 3)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros((2, 5), np.float32), ValueError, "shape"),
        (np.full((2, 6), np.nan, np.float32), ValueError, "NaN"),
        (np.zeros((0, 6), np.float32), ValueError, "at least one sample"),
        ([np.zeros((2, 6), np.float32)] * 2, ValueError, "list"),
    ],
    ids=["shape", "nan", "empty", "list"],
)
def test_bad_input(X, error, match) -> None:  # noqa: ANN001
    explainer = deepshap.DeepExplainer(nn.Linear(6, 2).eval(), _data((4, 6), 1))
    with pytest.raises(error, match=match):
        explainer.shap_values(X)


def test_bad_batch_size_and_rank_order() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        deepshap.DeepExplainer(nn.Linear(6, 2), _data((4, 6), 1), batch_size=0)
    explainer = deepshap.DeepExplainer(nn.Linear(6, 2), _data((4, 6), 1))
    with pytest.raises(ValueError, match="output_rank_order"):
        explainer.shap_values(_data((2, 6), 2), ranked_output=1, output_rank_order="median")


class InnerBatch(nn.Module):
    """A nonlinearity applied where the batch is the inner factor of a merged axis: (tokens * batch, d)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.out = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.lin(x).transpose(0, 1).reshape(-1, 4)  # (3 * batch, 4), batch inner
        h = torch.tanh(tokens).reshape(3, -1, 4).transpose(0, 1)
        return self.out(h.flatten(1))


def _same_as_one_sample_per_pass(model: nn.Module, bg: torch.Tensor, X: torch.Tensor, batch: int) -> None:
    """Additive with ``batch`` rows per pass and with one sample per pass, the same values both ways."""
    many = _additive(model, bg, X, batch_size=batch)
    one = _additive(model, bg, X, batch_size=len(bg))
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5, atol=1e-7)


def test_batch_merged_as_inner_factor_falls_back_to_one_sample_chunks() -> None:
    """Shapes cannot tell (tokens * batch) from (batch * tokens); the values can, and the answer is right."""
    torch.manual_seed(0)
    _same_as_one_sample_per_pass(InnerBatch().eval(), _data((5, 3, 4), 1), _data((3, 3, 4), 2), 100)


class TokenwiseMLP(nn.Module):
    """A token-wise MLP on (batch * tokens, features) rows, pooled over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ELU())
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, features = x.shape
        h = self.inner(x.reshape(n * tokens, features)).reshape(n, tokens, -1)
        return self.out(h.mean(1))


def test_batch_merged_as_outer_factor_is_paired_without_falling_back(monkeypatch) -> None:
    """(batch * tokens) rows split into (samples, background rows, tokens): several samples per chunk."""
    from deepshap.frameworks.pytorch import deep

    chunks = []
    attributions = deep._attributions
    monkeypatch.setattr(deep, "_attributions", lambda *args: chunks.append(args[-1]) or attributions(*args))
    _same_as_one_sample_per_pass(TokenwiseMLP().eval(), _data((6, 5, 4), 1), _data((4, 5, 4), 2), 24)
    assert chunks == [4, 1]  # 4 samples by 6 background rows per pass, no fallback; then 1 by 6


class SeqFirstTokenwise(TokenwiseMLP):
    """The same token-wise MLP on (tokens * batch, features) rows: the batch is the inner factor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, features = x.shape
        h = self.inner(x.transpose(0, 1).reshape(tokens * n, features)).reshape(tokens, n, -1)
        return self.out(h.mean(0))


class HeadsFirstMaskedPooling(nn.Module):
    """Per-head softmax over tokens on (heads * batch, tokens) rows, padding masked with ``fill``; the
    scores are shifted by ``offset``, which the softmax ignores."""

    def __init__(self, fill: float = float("-inf"), offset: float = 0.0) -> None:
        super().__init__()
        self.fill, self.offset = fill, offset
        self.score, self.readout = nn.Linear(4, 2), nn.Linear(6, 3)
        self.register_buffer("pad", torch.tensor([False, False, False, False, True, True]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, _ = x.shape
        scores = self.score(x).permute(2, 0, 1).reshape(2 * n, tokens) + self.offset
        scores = scores.masked_fill(self.pad, self.fill)
        return self.readout(torch.softmax(scores, -1).reshape(2, n, tokens).mean(0))


@pytest.mark.parametrize(
    ("model", "X"),
    [
        # samples constant along the tokens: row 0 and row m-1 of a wrong split hold equal values
        (SeqFirstTokenwise(), _data((2, 1, 4), 2).expand(2, 4, 4).contiguous()),
        # -inf in the compared values made the gap NaN, which passed any split
        (HeadsFirstMaskedPooling(), _data((3, 6, 4), 2)),
        # a finite mask (-1e9) set the tolerance of the whole comparison, which passed a wrong split
        (HeadsFirstMaskedPooling(-1e9), _data((3, 6, 4), 2)),
        # so did a large offset shared by all the values (1e4 + scores; float64 keeps the scores exact)
        (
            nn.Sequential(Lambda(torch.Tensor.double), HeadsFirstMaskedPooling(offset=1e4).double()),
            _data((3, 6, 4), 2),
        ),
    ],
    ids=["constant_along_tokens", "minus_inf_mask", "minus_1e9_mask", "offset_1e4"],
)
def test_a_wrong_split_of_the_batch_is_not_taken_for_a_right_one(model, X) -> None:
    """Where the real samples cannot tell the split, made-up ones do: the values of one sample per pass."""
    torch.manual_seed(0)
    _same_as_one_sample_per_pass(model, _data((2, *X.shape[1:]), 1), X, 100)


class EmptySlice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(x)) + torch.relu(x[:, :0]).sum(1, keepdim=True)


def test_a_nonlinearity_on_an_empty_slice() -> None:
    _additive(EmptySlice(), _data((3, 4), 1), _data((3, 4), 2), batch_size=100)


# found in review: each failed before its fix -------------------------------------------------------
class SkipAroundLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3, self.l4 = (
            nn.Linear(4, 4),
            nn.Linear(4, 4),
            nn.Linear(4, 2),
            nn.Linear(4, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(F.relu(self.l2(F.relu(self.l1(x))))) + self.l4(x)


def test_a_layer_that_a_skip_connection_bypasses_is_an_error() -> None:
    """Its input alone does not determine the output: the values could not add up to f(x)."""
    torch.manual_seed(0)
    model = SkipAroundLayer().eval()
    for explainer in (deepshap.DeepExplainer, deepshap.GradientExplainer):
        with pytest.raises(ValueError, match="bypass the layer Linear"):
            explainer((model, model.l2), _data((6, 4), 1))


class PoolThenInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.max_pool2d(self.conv(x), 2), inplace=True)
        y *= 2.0
        z, _ = F.max_pool2d(y, 1, return_indices=True)
        return self.head(z.flatten(1))


def test_max_pool_output_changed_in_place_and_pool_indices() -> None:
    torch.manual_seed(0)
    _additive(PoolThenInPlace(), _data((5, 1, 8, 8), 1), _data((2, 1, 8, 8), 2))


class DecodeInPlace(nn.Module):
    """A detection-head style decode: part of a tensor replaced in place after an op read it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.lin(x)
        p[:, 3:] = p[:, 3:].sigmoid()
        return p[:, 2:5] * 1.5


def test_a_tensor_changed_in_place_after_an_op_read_it() -> None:
    torch.manual_seed(0)
    _additive(DecodeInPlace(), _data((6, 4), 1), _data((3, 4), 2))


class FunctionalAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.register_buffer("mask", torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.transpose(0, 1)
        out, _ = F.multi_head_attention_forward(
            q,
            q,
            q,
            8,
            2,
            self.mha.in_proj_weight,
            self.mha.in_proj_bias,
            None,
            None,
            False,
            0.0,
            self.mha.out_proj.weight,
            self.mha.out_proj.bias,
            training=False,
            attn_mask=self.mask,
        )
        return out.transpose(0, 1).mean(1)


def test_a_boolean_attention_mask_in_functional_multi_head_attention() -> None:
    torch.manual_seed(0)
    _additive(FunctionalAttention(), _data((4, 5, 8), 1), _data((2, 5, 8), 2))


class DropoutBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.bn, self.drop, self.out = (
            nn.Linear(4, 6),
            nn.BatchNorm1d(6),
            nn.Dropout(0.5),
            nn.Linear(6, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(F.relu(self.bn(self.lin(x)))))


def test_a_model_put_back_in_training_mode_is_explained_in_eval_mode_and_left_training() -> None:
    torch.manual_seed(0)
    model = DropoutBatchNorm()
    bg, X = _data((8, 4), 1), _data((3, 4), 2)
    deep, gradient = deepshap.DeepExplainer(model, bg), deepshap.GradientExplainer(model, bg)
    expected = deep.shap_values(X)
    stats = model.bn.running_mean.clone()
    model.train()
    np.testing.assert_allclose(np.stack(deep.shap_values(X)), np.stack(expected), rtol=1e-6)
    a, b = gradient.shap_values(X, rseed=3), gradient.shap_values(X, rseed=3)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert torch.equal(model.bn.running_mean, stats)  # no batch statistics were updated
    assert model.training and model.drop.training


# findings of a review of 353 one-op models ---------------------------------------------------------
class Quotient(nn.Module):
    """A quotient of two branches, written one of several ways."""

    def __init__(self, form: str, offset: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.fc = nn.Linear(6, 8), nn.Linear(6, 8), nn.Linear(8, 2)
        with torch.no_grad():
            self.fc.bias[0] += offset
        self.form = form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num, den = self.a(x), F.softplus(self.b(x)) + 0.5
        divide = {
            "/": lambda: num / den,
            "torch.div": lambda: torch.div(num, den),
            "torch.true_divide": lambda: torch.true_divide(num, den),
            "Tensor.true_divide": lambda: num.true_divide(den),
        }
        return self.fc(divide[self.form]())


@pytest.mark.parametrize("form", ["torch.div", "torch.true_divide", "Tensor.true_divide"])
def test_every_spelling_of_a_division_gets_the_quotient_rule(form: str) -> None:
    """true_divide was taken for a linear op (right only for a constant denominator)."""
    bg, X = _data((8, 6), 1), _data((3, 6), 2) * 1.5
    expected = _additive(Quotient("/"), bg, X)
    np.testing.assert_allclose(_additive(Quotient(form), bg, X)[0], expected[0], rtol=1e-5, atol=1e-7)


def test_the_additivity_check_is_not_loosened_by_a_large_output_offset() -> None:
    """An output of 5000 that moves by about 0.2 next to an ordinary one: sums that miss the change were
    let through when the tolerance followed the outputs' size instead of their change."""

    class Wrong(torch.autograd.Function):  # tanh's plain gradient: not a DeepLIFT multiplier
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            ctx.save_for_backward(x)
            return torch.tanh(x) * 3

        @staticmethod
        def backward(ctx, grad):  # noqa: ANN001, ANN205
            (x,) = ctx.saved_tensors
            return grad * 3 * (1 - torch.tanh(x) ** 2)

    class Offset(Quotient):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(Wrong.apply(self.a(x)))

    from deepshap.explainers.deep import AdditivityError

    bg, X = _data((8, 6), 1), _data((3, 6), 2) * 1.5
    deepshap.DeepExplainer(Quotient("/", offset=5000.0), bg).shap_values(X)  # right: no error
    with pytest.raises(AdditivityError):
        deepshap.DeepExplainer(Offset("/", offset=5000.0), bg).shap_values(X)


class Normalised(nn.Module):
    def __init__(self, first: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = first
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 6 * 6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = {"normalize": lambda: F.normalize(x, dim=1), "sqrt": lambda: torch.sqrt(x), "pow": lambda: x**0.5}
        return self.fc(F.relu(self.conv(h[self.first]())).flatten(1))


@pytest.mark.parametrize("first", ["normalize", "sqrt", "pow"])
def test_a_square_root_of_zeros_in_sample_and_reference_gives_no_nan(first: str) -> None:
    """Black borders: the infinite derivative of sqrt at 0 stood in for the undefined secant where the
    sample and the reference are both 0, and 0 * inf made NaN values."""
    images = _data((11, 3, 6, 6), 3).abs()
    images[:, :, 0] = 0.0  # the top row is black in every image
    values = _additive(Normalised(first), images[:8], images[8:])[0]
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("select", ["max_indices", "max_pool_indices"])
def test_argmax_indices_from_max_and_max_pool_are_data_dependent(select: str) -> None:
    """Indices from ``max(dim)`` and ``max_pool(return_indices=True)`` were taken for constants, so the
    sample's argmax picked the reference's values too; as with ``argmax``, that is an error naming it."""

    def pick(x: torch.Tensor) -> torch.Tensor:
        if select == "max_indices":
            index = x.max(1, keepdim=True).indices
        else:
            _, index = F.max_pool1d(x[:, None], 2, return_indices=True)
            index = index[:, 0, :1]
        return torch.gather(x * 2.0, 1, index)

    explainer = deepshap.DeepExplainer(Lambda(pick), _data((4, 6), 1))
    with pytest.raises(
        UnsupportedOperationError, match="gather uses a mask or index computed from the input"
    ):
        explainer.shap_values(_data((2, 6), 2))


@pytest.mark.parametrize("attention", ["sdpa", "multi_head"])
def test_an_attention_mask_computed_from_the_input_raises(attention: str) -> None:
    """Masks are added to the scores as constants; one computed from the input had its change lost."""
    torch.manual_seed(0)
    heads = nn.MultiheadAttention(8, 2, batch_first=True)

    def attend(x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, 4, 8)
        bias = tokens.mean(-1, keepdim=True) - tokens.mean(-1)[:, None, :]  # (B, 4, 4), from the input
        if attention == "sdpa":
            out = F.scaled_dot_product_attention(tokens, tokens, tokens, attn_mask=bias)
        else:
            out = heads(tokens, tokens, tokens, attn_mask=bias.repeat_interleave(2, 0), need_weights=False)[0]
        return out.sum((1, 2))[:, None]

    explainer = deepshap.DeepExplainer(Lambda(attend).eval(), _data((4, 32), 1))
    with pytest.raises(UnsupportedOperationError, match="attn_mask of .* is computed from the model's input"):
        explainer.shap_values(_data((2, 32), 2))


@pytest.mark.parametrize(
    "form",
    [
        lambda h: torch.pow(h, exponent=2),
        lambda h: h.pow(exponent=3),
        lambda h: torch.maximum(h, other=h.flip(1)),
        lambda h: torch.maximum(input=h, other=h.flip(1)),
        lambda h: torch.norm(h, dim=1, keepdim=True).expand_as(h),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(-2, -1), keepdim=True).expand(-1, 2, 2, 2),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(1, 3)).repeat(1, 4),
        lambda h: torch.logsumexp(h.reshape(-1, 2, 2, 2), dim=(1, -1)).repeat(1, 4),
        lambda h: torch.logsumexp(h.reshape(-1, 4, 2), dim=(-2, -1), keepdim=True).expand(-1, 4, 2),
    ],
    ids=[
        "pow_exponent",
        "tensor_pow_exponent",
        "maximum_other",
        "maximum_input_other",
        "norm_dim",
        "logsumexp_last_two_keepdim",
        "logsumexp_apart",
        "logsumexp_mixed_signs",
        "logsumexp_channels_equal_rest",
    ],
)
def test_supported_operations_called_with_keywords_or_several_dims(form) -> None:  # noqa: ANN001
    """Keyword operands were read as missing (IndexError), torch.norm's forwarded ``out`` was refused, and
    logsumexp over negative, mixed-sign or non-adjacent dims had the wrong shape or reduced other axes."""
    torch.manual_seed(0)
    first, last = nn.Linear(6, 8), nn.Linear(8, 2)
    model = nn.Sequential(first, Lambda(lambda h: form(h).reshape(h.shape[0], 8)), last)
    _additive(model, _data((8, 6), 1), _data((3, 6), 2))


class RowLoop(nn.Module):
    """Rows of the batch one at a time (independent rows, no data-dependent control flow)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.fc = nn.Linear(6, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.stack([torch.tanh(self.a(row)) for row in x]))


def test_a_model_that_loops_over_its_rows_is_explained_one_sample_at_a_time() -> None:
    """More rows in the pass on (sample, reference) pairs mean more calls than in the references' pass;
    it was taken for data-dependent control flow. One sample per chunk gives both passes the same rows."""
    bg, X = _data((8, 6), 1), _data((3, 6), 2)
    values = _additive(RowLoop(), bg, X)[0]
    one_at_a_time = _additive(RowLoop(), bg, X, batch_size=8)[0]
    np.testing.assert_allclose(values, one_at_a_time, rtol=1e-6, atol=1e-8)


def test_data_dependent_control_flow_still_raises() -> None:
    class Branching(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.tanh(row) if row.sum() > 0 else row * 2 for row in x]).sum(
                1, keepdim=True
            )

    explainer = deepshap.DeepExplainer(Branching(), _data((8, 6), 1))
    with pytest.raises(RuntimeError, match="no data-dependent control flow"):
        explainer.shap_values(_data((3, 6), 2))
