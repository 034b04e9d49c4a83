"""Tiny PyTorch architectures from Hugging Face transformers, built from their configs with random
weights (nothing downloaded), each wrapped to map one input tensor to a ``(batch, outputs)`` tensor.

Vision models take 32x32 photos (their batch-norm statistics fitted on photos, their head scaled so the
logits spread); text encoders take ``inputs_embeds``; decoder-only and state-space language models give
the logits of their last position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.helpers.zoo import Case, photos

N_CLASSES = 3
IMAGE = 32
TOKENS, HIDDEN, VOCAB = 5, 32, 7
# small enough for two CPU cores; no dropout anywhere, so train mode differs from eval only in batch norm
_TEXT = dict(
    hidden_size=HIDDEN,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=48,
    vocab_size=50,
    max_position_embeddings=16,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    num_labels=N_CLASSES,
)
_LM = dict(
    hidden_size=HIDDEN,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=48,
    vocab_size=VOCAB,
    max_position_embeddings=16,
)


def _wrap(model: Any, read: Callable[[Any, Any], Any]) -> Any:
    import torch

    class Outputs(torch.nn.Module):
        """``read(model, x)``: the model's outputs explained, ``(batch, K)``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return read(self.model, x)

    return Outputs().eval()


def _fit_batch_norm(model: Any, images: Any) -> None:
    """Batch-norm statistics of ``images`` (one training-mode pass with a cumulative average)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()


def _spread_head(wrapped: Any, head: Any, images: Any) -> None:
    """Scale and centre the final linear layer so the logits vary by about 1 over ``images``."""
    import torch

    with torch.no_grad():
        out = wrapped(images)
        scale = 1.0 / out.std(0).clamp_min(1e-12)
        head.weight.mul_(scale[:, None])
        head.bias.mul_(scale).sub_(out.mean(0) * scale)


def _vision(config: Any, model_class: Any, head: Callable[[Any], Any], size: int = IMAGE) -> Case:
    import torch

    torch.manual_seed(0)
    config.num_labels = N_CLASSES
    net = model_class(config)
    images = torch.from_numpy(photos(size).transpose(0, 3, 1, 2).copy())
    images = (images - 0.5) / 0.25
    _fit_batch_norm(net, images)
    wrapped = _wrap(net, lambda m, x: m(pixel_values=x).logits)
    _spread_head(wrapped, head(net), images)
    data = images.numpy()
    return Case(wrapped, data[:3], data[3:5])


def _embeddings(seed: int, rows: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((rows, TOKENS, HIDDEN))).astype(np.float32)


def _text(config: Any, model_class: Any) -> Case:
    import torch

    torch.manual_seed(0)
    net = model_class(config).eval()
    wrapped = _wrap(net, lambda m, x: m(inputs_embeds=x).logits)
    return Case(wrapped, _embeddings(1, 3), _embeddings(2, 2))


def _language_model(config: Any, model_class: Any) -> Case:
    import torch

    torch.manual_seed(0)
    net = model_class(config).eval()
    wrapped = _wrap(net, lambda m, x: m(inputs_embeds=x, use_cache=False).logits[:, -1, :])
    return Case(wrapped, _embeddings(1, 3), _embeddings(2, 2))


# --- vision ----------------------------------------------------------------------------------------
def _vit_like(config_name: str, model_name: str, **extra: Any) -> Callable[[], Case]:
    def build() -> Case:
        import transformers as T

        config = getattr(T, config_name)(
            image_size=IMAGE,
            patch_size=8,
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **extra,
        )
        return _vision(config, getattr(T, model_name), lambda m: m.classifier)

    return build


def resnet() -> Case:
    import transformers as T

    config = T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    return _vision(config, T.ResNetForImageClassification, lambda m: m.classifier[1])


def resnet_bottleneck() -> Case:
    import transformers as T

    config = T.ResNetConfig(embedding_size=8, hidden_sizes=[16, 32], depths=[1, 1], layer_type="bottleneck")
    return _vision(config, T.ResNetForImageClassification, lambda m: m.classifier[1])


def convnext() -> Case:
    import transformers as T

    config = T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, patch_size=4)
    return _vision(config, T.ConvNextForImageClassification, lambda m: m.classifier)


def convnextv2() -> Case:
    import transformers as T

    config = T.ConvNextV2Config(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, patch_size=4)
    return _vision(config, T.ConvNextV2ForImageClassification, lambda m: m.classifier)


def mobilenet_v2() -> Case:
    import transformers as T

    config = T.MobileNetV2Config(depth_multiplier=0.25, image_size=IMAGE, classifier_dropout_prob=0.0)
    return _vision(config, T.MobileNetV2ForImageClassification, lambda m: m.classifier)


def mobilenet_v1() -> Case:
    import transformers as T

    config = T.MobileNetV1Config(depth_multiplier=0.25, image_size=IMAGE, classifier_dropout_prob=0.0)
    return _vision(config, T.MobileNetV1ForImageClassification, lambda m: m.classifier)


def efficientnet() -> Case:
    import transformers as T

    config = T.EfficientNetConfig(
        image_size=IMAGE,
        width_coefficient=0.25,
        depth_coefficient=0.25,
        dropout_rate=0.0,
        drop_connect_rate=0.0,
        hidden_dim=320,
    )
    return _vision(config, T.EfficientNetForImageClassification, lambda m: m.classifier)


def regnet() -> Case:
    import transformers as T

    config = T.RegNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], groups_width=4)
    return _vision(config, T.RegNetForImageClassification, lambda m: m.classifier[1])


def swin() -> Case:
    import transformers as T

    config = T.SwinConfig(
        image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.SwinForImageClassification, lambda m: m.classifier)


def swinv2() -> Case:
    import transformers as T

    config = T.Swinv2Config(
        image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.Swinv2ForImageClassification, lambda m: m.classifier)


def dinov2() -> Case:
    import transformers as T

    config = T.Dinov2Config(
        image_size=IMAGE, patch_size=8, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
        mlp_ratio=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.Dinov2ForImageClassification, lambda m: m.classifier)


def segformer() -> Case:
    import transformers as T

    config = T.SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
        strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.SegformerForImageClassification, lambda m: m.classifier)


def poolformer() -> Case:
    import transformers as T

    config = T.PoolFormerConfig(
        depths=[1, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1],
        num_encoder_blocks=2, mlp_ratio=2.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.PoolFormerForImageClassification, lambda m: m.classifier)


def levit() -> Case:
    import transformers as T

    config = T.LevitConfig(
        image_size=IMAGE, patch_size=16, hidden_sizes=[16, 24], num_attention_heads=[2, 2], depths=[1, 1],
        key_dim=[8, 8], drop_path_rate=0, mlp_ratio=[2, 2], attention_ratio=[2, 2],
        down_ops=[["Subsample", 8, 2, 2, 2, 2]],
    )  # fmt: skip
    return _vision(config, T.LevitForImageClassification, lambda m: m.classifier.linear)


def mobilevit() -> Case:
    import transformers as T

    config = T.MobileViTConfig(
        image_size=IMAGE, hidden_sizes=[16, 20, 24], neck_hidden_sizes=[8, 8, 12, 16, 16, 20, 32],
        num_attention_heads=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=0.0,
    )  # fmt: skip
    return _vision(config, T.MobileViTForImageClassification, lambda m: m.classifier)


def cvt() -> Case:
    import transformers as T

    config = T.CvtConfig(
        embed_dim=[16, 24], num_heads=[1, 2], depth=[1, 2], patch_sizes=[7, 3], patch_stride=[4, 2],
        patch_padding=[2, 1], mlp_ratio=[2.0, 2.0], attention_drop_rate=[0.0, 0.0], drop_rate=[0.0, 0.0],
        drop_path_rate=[0.0, 0.0], qkv_bias=[True, True], cls_token=[False, True],
        kernel_qkv=[3, 3], padding_kv=[1, 1], stride_kv=[2, 2], padding_q=[1, 1], stride_q=[1, 1],
    )  # fmt: skip
    return _vision(config, T.CvtForImageClassification, lambda m: m.classifier)


def focalnet() -> Case:
    import transformers as T

    config = T.FocalNetConfig(
        image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], focal_levels=[2, 2],
        focal_windows=[3, 3], hidden_dropout_prob=0.0, drop_path_rate=0.0,
    )  # fmt: skip
    return _vision(config, T.FocalNetForImageClassification, lambda m: m.classifier)


VISION: dict[str, Callable[[], Case]] = {
    "ViT": _vit_like("ViTConfig", "ViTForImageClassification"),
    "DeiT": _vit_like("DeiTConfig", "DeiTForImageClassification"),
    "BEiT": _vit_like("BeitConfig", "BeitForImageClassification", use_mean_pooling=True),
    "Data2VecVision": _vit_like("Data2VecVisionConfig", "Data2VecVisionForImageClassification"),
    "DINOv2": dinov2,
    "Swin": swin,
    "Swinv2": swinv2,
    "ConvNeXt": convnext,
    "ConvNeXtV2": convnextv2,
    "ResNet": resnet,
    "ResNet-bottleneck": resnet_bottleneck,
    "RegNet": regnet,
    "MobileNetV1": mobilenet_v1,
    "MobileNetV2": mobilenet_v2,
    "EfficientNet": efficientnet,
    "SegFormer": segformer,
    "PoolFormer": poolformer,
    "LeViT": levit,
    "MobileViT": mobilevit,
    "CvT": cvt,
    "FocalNet": focalnet,
}


# --- text encoders through inputs_embeds -----------------------------------------------------------
def _encoder(config_name: str, model_name: str, **extra: Any) -> Callable[[], Case]:
    def build() -> Case:
        import transformers as T

        return _text(getattr(T, config_name)(**{**_TEXT, **extra}), getattr(T, model_name))

    return build


def distilbert() -> Case:
    import transformers as T

    config = T.DistilBertConfig(
        dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=48, vocab_size=50, max_position_embeddings=16,
        dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, num_labels=N_CLASSES,
    )  # fmt: skip
    return _text(config, T.DistilBertForSequenceClassification)


TEXT: dict[str, Callable[[], Case]] = {
    "BERT": _encoder("BertConfig", "BertForSequenceClassification"),
    "RoBERTa": _encoder("RobertaConfig", "RobertaForSequenceClassification", pad_token_id=1),
    "DistilBERT": distilbert,
    "ALBERT": _encoder("AlbertConfig", "AlbertForSequenceClassification", embedding_size=HIDDEN),
    "ELECTRA": _encoder("ElectraConfig", "ElectraForSequenceClassification", embedding_size=HIDDEN),
    "DeBERTa-v2": _encoder("DebertaV2Config", "DebertaV2ForSequenceClassification"),
    "XLM-RoBERTa": _encoder("XLMRobertaConfig", "XLMRobertaForSequenceClassification", pad_token_id=1),
}


# --- decoder-only language models and state-space models ------------------------------------------
def _decoder(config_name: str, model_name: str, **extra: Any) -> Callable[[], Case]:
    def build() -> Case:
        import transformers as T

        config = getattr(T, config_name)(**{**_LM, **extra})
        return _language_model(config, getattr(T, model_name))

    return build


def gpt2() -> Case:
    import transformers as T

    config = T.GPT2Config(
        n_embd=HIDDEN, n_layer=2, n_head=2, n_inner=48, vocab_size=VOCAB, n_positions=16,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return _language_model(config, T.GPT2LMHeadModel)


def opt() -> Case:
    import transformers as T

    config = T.OPTConfig(
        hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, ffn_dim=48, vocab_size=VOCAB,
        max_position_embeddings=16, word_embed_proj_dim=HIDDEN, dropout=0.0, attention_dropout=0.0,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    return _language_model(config, T.OPTForCausalLM)


def mamba() -> Case:
    import transformers as T

    config = T.MambaConfig(
        hidden_size=HIDDEN, state_size=4, num_hidden_layers=2, vocab_size=VOCAB, expand=2, conv_kernel=3,
        time_step_rank=4,
    )  # fmt: skip
    return _language_model(config, T.MambaForCausalLM)


LANGUAGE: dict[str, Callable[[], Case]] = {
    "GPT-2": gpt2,
    "Llama": _decoder("LlamaConfig", "LlamaForCausalLM", num_key_value_heads=1),
    "Mistral": _decoder("MistralConfig", "MistralForCausalLM", num_key_value_heads=1, sliding_window=4),
    "Qwen2": _decoder("Qwen2Config", "Qwen2ForCausalLM", num_key_value_heads=1),
    "Phi": _decoder("PhiConfig", "PhiForCausalLM", resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0),
    "GPT-NeoX": _decoder("GPTNeoXConfig", "GPTNeoXForCausalLM", rotary_pct=0.5),
    "Gemma": _decoder("GemmaConfig", "GemmaForCausalLM", num_key_value_heads=1, head_dim=16),
    "OPT": opt,
    "Mamba": mamba,
}

ALL: dict[str, Callable[[], Case]] = {**VISION, **TEXT, **LANGUAGE}
