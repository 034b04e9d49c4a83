"""keras.applications networks built with random weights (``weights=None``, nothing downloaded), two
classes, logits out, on small photos; their batch-norm statistics fitted on photos and their classifier
scaled so the logits spread (random networks otherwise give outputs that barely depend on the input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.helpers.zoo import Case, photos

#: Two classes: every explained output costs one more backward graph to trace.
N_CLASSES = 2


def _fit_batch_norm(model: Any, images: np.ndarray) -> None:
    """Batch-norm statistics of ``images``: one training-mode pass with momentum 0 and dropout off."""
    from keras import layers

    inner = list(model._flatten_layers(include_self=False))
    norms = [layer for layer in inner if isinstance(layer, layers.BatchNormalization)]
    dropouts = [layer for layer in inner if isinstance(layer, layers.Dropout)]
    saved = [(n, n.momentum) for n in norms] + [(d, d.rate) for d in dropouts]
    for norm in norms:
        norm.momentum = 0.0
    for dropout in dropouts:
        dropout.rate = 0.0
    try:
        model(images, training=True)
    finally:
        for layer, value in saved:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = value
            else:
                layer.rate = value


def _spread_head(model: Any, images: np.ndarray) -> None:
    """Scale and centre the last layer with weights (a Dense or 1x1 Conv2D classifier) so the logits
    vary by about 1 over ``images``."""
    head = [layer for layer in model.layers if layer.get_weights()][-1]
    out = np.asarray(model(images, training=False))
    scale = 1.0 / np.maximum(out.std(0), 1e-12)
    kernel, bias = head.get_weights()
    head.set_weights([kernel * scale, (bias - out.mean(0)) * scale])


def _application(name: str, size: int = 32, **options: Any) -> Callable[[], Case]:
    def build() -> Case:
        import keras

        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, name)(
            weights=None,
            input_shape=(size, size, 3),
            classes=N_CLASSES,
            classifier_activation=None,
            **options,
        )
        images = (photos(size) - 0.5) / 0.25
        _fit_batch_norm(model, images)
        _spread_head(model, images)
        return Case(model, images[:3], images[3:5])

    return build


APPLICATIONS: dict[str, Callable[[], Case]] = {
    "MobileNet": _application("MobileNet", alpha=0.25),
    "MobileNetV2": _application("MobileNetV2", alpha=0.35),
    "MobileNetV3Small": _application("MobileNetV3Small", alpha=0.75, include_preprocessing=False),
    "MobileNetV3Large": _application("MobileNetV3Large", alpha=0.75, include_preprocessing=False),
    "EfficientNetB0": _application("EfficientNetB0"),
    "EfficientNetV2B0": _application("EfficientNetV2B0", include_preprocessing=False),
    "ResNet50": _application("ResNet50"),
    "ResNet50V2": _application("ResNet50V2"),
    "DenseNet121": _application("DenseNet121"),
    "ConvNeXtTiny": _application("ConvNeXtTiny", include_preprocessing=False),
    "NASNetMobile": _application("NASNetMobile"),
    "Xception": _application("Xception", size=71),
    "InceptionV3": _application("InceptionV3", size=75),
    "VGG16": _application("VGG16"),
    "VGG19": _application("VGG19"),
    "InceptionResNetV2": _application("InceptionResNetV2", size=75),
}
