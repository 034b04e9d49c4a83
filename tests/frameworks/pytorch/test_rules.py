"""The PyTorch registry's DeepLIFT/Shapley rules called directly, against their definitions.

Each test takes one (sample, reference) pair of small arrays, runs the handler of one registry entry on
it and reads the multipliers from one backward pass of the sum of the outputs; they are compared with the
rule's definition computed in float64 (:mod:`tests.helpers.rules`). Parametrised over the registry, so a
new entry without a definition here fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deepshap.frameworks.pytorch import handlers as H  # noqa: E402
from deepshap.frameworks.pytorch.registry import NAMES, RULES, resolve  # noqa: E402
from deepshap.rules import Rule  # noqa: E402
from tests.helpers.rules import (  # noqa: E402
    DTYPES,
    POSITIVE,
    UNIT,
    close,
    logsumexp_rule,
    max_rule,
    pair,
    secant,
    shapley,
    softmax_rule,
    torch_rule,
    unit_pair,
    unwindows,
    windows,
)

#: Extra arguments of the PyTorch element-wise functions that need them.
_TORCH_EXTRA: dict[str, tuple] = {
    "clamp": (-0.5, 0.5),
    "clip": (-0.5, 0.5),
    "clamp_min": (0.1,),
    "clamp_max": (0.1,),
    "threshold": (0.1, -1.0),
}
_TORCH_RESCALE = sorted(
    name
    for name in NAMES
    if RULES[resolve(name)].kind is Rule.RESCALE and not name.endswith("_") and "rrelu" not in name
)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_RESCALE)
def test_torch_rescale_is_the_secant(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    func, extra = resolve(name), _TORCH_EXTRA.get(short, ())
    x, r = unit_pair((3, 5)) if short in UNIT else pair((3, 5), positive=short in POSITIVE)
    _, (m,) = torch_rule(func, [x], [r], dtype, *extra)
    exact = secant(lambda a: func(torch.tensor(a, dtype=torch.float64), *extra).numpy(), x, r)
    close(m, exact, dtype)


_TORCH_BINARY = sorted(
    name
    for name in NAMES
    if not name.endswith("_")
    and not name.startswith("torch.Tensor.__i")
    and (
        RULES[resolve(name)].kind is Rule.SHAPLEY_PAIR
        or RULES[resolve(name)].apply is H.divide
        or getattr(RULES[resolve(name)].apply, "func", None) in (H.divide, H.binary_closed_form)
    )
)


def _torch64(func: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda u, v: func(
        torch.tensor(u, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    ).numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_BINARY)
def test_torch_binary_rules_are_two_player_shapley_values(name: str, dtype: Any) -> None:
    func = resolve(name)
    a, b = pair((2, 4), positive=True), pair((2, 4), positive=True)
    _, (m_a, m_b) = torch_rule(func, [a[0], b[0]], [a[1], b[1]], dtype)
    phi_a, phi_b = shapley(_torch64(func), a, b)
    close(m_a * (a[0] - a[1]), phi_a, dtype)
    close(m_b * (b[0] - b[1]), phi_b, dtype)


_TORCH_MAX = sorted(name for name in NAMES if RULES[resolve(name)].kind is Rule.MAX)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_MAX)
def test_torch_max_rules_follow_the_definition(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    func = resolve(name)
    if "pool" not in short:
        x, r = pair((3, 5))
        sign = 1.0 if short in ("max", "amax") else -1.0
        _, (m,) = torch_rule(func, [x], [r], dtype, 1)
        close(m, max_rule(sign * x, sign * r), dtype)
        return
    spatial = int(short.replace("_with_indices", "")[-2])
    shape = {1: (1, 2, 16), 2: (1, 2, 4, 4), 3: (1, 2, 4, 4, 4)}[spatial]
    x, r = pair(shape)
    size = (2,) * spatial if "adaptive" in short else 2
    _, (m,) = torch_rule(func, [x], [r], dtype, size)
    if spatial == 2:
        close(m, unwindows(max_rule(windows(x), windows(r))), dtype)
    else:  # every window's change lands on one position, with a multiplier in [0, 1]
        out_x = func(torch.tensor(x), size)
        out_r = func(torch.tensor(r), size)
        out_x, out_r = (o[0] if isinstance(o, tuple) else o for o in (out_x, out_r))
        close((m * (x - r)).sum(), (out_x - out_r).sum().item(), dtype)
        assert np.count_nonzero(m) <= out_x.numel() and m.min() >= 0 and m.max() <= 1 + 1e-6


_TORCH_SOFTMAX = sorted(name for name in NAMES if RULES[resolve(name)].kind is Rule.SOFTMAX)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", _TORCH_SOFTMAX)
def test_torch_softmax_family_follows_the_chained_rule(name: str, dtype: Any) -> None:
    short = name.rsplit(".", 1)[-1]
    x, r = pair((3, 5))
    _, (m,) = torch_rule(resolve(name), [x], [r], dtype, -1)
    if short == "logsumexp":
        expected = logsumexp_rule(x, r)
    elif short == "softmin":
        expected = -softmax_rule(-x, -r, log=False)
    else:
        expected = softmax_rule(x, r, log=short == "log_softmax")
    close(m, expected, dtype)
