"""Toy models shared by the tests (torch and Keras built lazily, seeded, small enough for 2 CPU cores).

Every builder takes a ``seed`` so results are reproducible; torch models come back in eval mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def rng_data(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 data of ``shape``."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# torch --------------------------------------------------------------------------------------------
def torch_linear(n_features: int = 6, n_outputs: int = 3, seed: int = 0) -> Any:
    """``y = x W^T + b`` on flat inputs."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Linear(n_features, n_outputs).eval()


def torch_mlp(n_features: int = 6, n_outputs: int = 3, hidden: int = 16, seed: int = 0) -> Any:
    """A small nonlinear MLP (tanh, softplus) with a smooth output."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Softplus(),
        nn.Linear(hidden, n_outputs),
    ).eval()


def torch_two_input(n_a: int = 5, n_b: int = 4, n_outputs: int = 3, seed: int = 0) -> Any:
    """``forward(a, b)``: two flat inputs mixed nonlinearly."""
    import torch
    from torch import nn

    class TwoInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fa = nn.Linear(n_a, 8)
            self.fb = nn.Linear(n_b, 8)
            self.head = nn.Linear(8, n_outputs)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.head(torch.tanh(self.fa(a)) * torch.sigmoid(self.fb(b)))

    torch.manual_seed(seed)
    return TwoInput().eval()


def torch_cnn(n_outputs: int = 4, seed: int = 0) -> Any:
    """A tiny CNN on (1, 8, 8) images; ``model[2]`` is the second conv, a good intermediate layer."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, n_outputs),
    ).eval()


def torch_ignores_input(n_features: int = 4) -> Any:
    """A model whose output does not depend on its input (a learned constant)."""
    import torch
    from torch import nn

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 2)

    return Constant().eval()


# keras --------------------------------------------------------------------------------------------
def keras_linear(n_features: int = 6, n_outputs: int = 3, seed: int = 0) -> Any:
    """A Sequential ``Dense`` layer (no activation)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_outputs)])


def keras_mlp(n_features: int = 6, n_outputs: int = 3, hidden: int = 16, seed: int = 0) -> Any:
    """A small nonlinear Sequential MLP."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((n_features,)),
            layers.Dense(hidden, activation="tanh"),
            layers.Dense(hidden, activation="softplus"),
            layers.Dropout(0.5),
            layers.Dense(n_outputs),
        ]
    )


def keras_two_input(n_a: int = 5, n_b: int = 4, n_outputs: int = 3, seed: int = 0) -> Any:
    """A functional model with two flat inputs mixed nonlinearly."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    a, b = keras.Input((n_a,)), keras.Input((n_b,))
    mixed = layers.Multiply()(
        [layers.Dense(8, activation="tanh")(a), layers.Dense(8, activation="sigmoid")(b)]
    )
    return keras.Model([a, b], layers.Dense(n_outputs)(mixed))


def keras_cnn(n_outputs: int = 4, seed: int = 0) -> Any:
    """A tiny functional CNN on (8, 8, 1) images; ``layers[2]`` is the second conv."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    h = layers.Conv2D(4, 3, padding="same", activation="softplus")(h)
    out = layers.Dense(n_outputs)(layers.Flatten()(h))
    return keras.Model(inputs, out)
