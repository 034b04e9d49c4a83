"""DeepExplainer on PyTorch architectures: convolutions, residual blocks, attention, transformers, several
inputs, tensors changed in place; each additive within 1e-4 of its output change.

Every model is small and seeded. ``additive_values`` recomputes ``sum(phi) == f(x) - E f(b)`` (with the
explainer's own check switched off), so the property is asserted by the test, not only by the library."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from tests.helpers.torch_deep import ReusedNet, additive_values, tensor_data  # noqa: E402


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


def test_functional_relu_maxpool_and_sigmoid_gate() -> None:
    torch.manual_seed(0)
    additive_values(FunctionalNet(), tensor_data((12, 2, 8, 8), 1), tensor_data((3, 2, 8, 8), 2))


def test_reused_relu_and_maxpool_modules() -> None:
    torch.manual_seed(0)
    additive_values(ReusedNet(), tensor_data((10, 1, 12, 12), 1), tensor_data((3, 1, 12, 12), 2))


def test_residual_block_inplace_relu_and_batchnorm() -> None:
    torch.manual_seed(0)
    additive_values(
        _randomize_batchnorm(ResNetTiny()), tensor_data((8, 3, 8, 8), 1), tensor_data((2, 3, 8, 8), 2)
    )


def test_batchnorm1d_mlp() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.LeakyReLU(0.1), nn.Linear(10, 3))
    additive_values(_randomize_batchnorm(model), tensor_data((16, 6), 1), tensor_data((4, 6), 2))


@pytest.mark.parametrize("batch_first", [True, False])
def test_vit_block_multihead_attention_layernorm_gelu(batch_first: bool) -> None:
    torch.manual_seed(0)
    additive_values(TinyViT(batch_first), tensor_data((6, 3, 8, 8), 1), tensor_data((3, 3, 8, 8), 2))


def test_scaled_dot_product_attention() -> None:
    torch.manual_seed(0)
    additive_values(SDPANet(), tensor_data((6, 5, 8), 1), tensor_data((3, 5, 8), 2))


def test_depthwise_groupnorm_transposed_conv_bilinear_interpolate() -> None:
    torch.manual_seed(0)
    additive_values(DepthwiseTransposed(), tensor_data((6, 4, 4, 4), 1), tensor_data((2, 4, 4, 4), 2))


def test_two_input_model() -> None:
    torch.manual_seed(0)
    bg = [tensor_data((8, 5), 1), tensor_data((8, 2, 6), 2)]
    X = [tensor_data((3, 5), 3), tensor_data((3, 2, 6), 4)]
    values = additive_values(TwoInputs(), bg, X)
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
    additive_values(SeqFirstTransformer(), tensor_data((6, 5, 16), 1), tensor_data((3, 5, 16), 2))


def test_conv1d_conv3d_and_other_poolings() -> None:
    torch.manual_seed(0)
    one_d = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.Tanh(), nn.MaxPool1d(2), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(8, 2)
    )
    additive_values(one_d, tensor_data((6, 2, 10), 1), tensor_data((2, 2, 10), 2))
    three_d = nn.Sequential(
        nn.Conv3d(1, 2, 2), nn.ReLU(), nn.AdaptiveMaxPool3d(2), nn.Flatten(), nn.Linear(16, 2)
    )
    additive_values(three_d, tensor_data((6, 1, 4, 4, 4), 1), tensor_data((2, 1, 4, 4, 4), 2))


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
    additive_values(PoolThenInPlace(), tensor_data((5, 1, 8, 8), 1), tensor_data((2, 1, 8, 8), 2))


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
    additive_values(DecodeInPlace(), tensor_data((6, 4), 1), tensor_data((3, 4), 2))


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
    additive_values(FunctionalAttention(), tensor_data((4, 5, 8), 1), tensor_data((2, 5, 8), 2))
