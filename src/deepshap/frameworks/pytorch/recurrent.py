"""Recurrent layers (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their cells) rewritten into the primitives of
their documented equations: linear maps, sigmoid and tanh (rescale rule) and the products of gates with
states (the two-player product rule). The interception mode runs these in place of ``torch.lstm`` and the
others, intercepting each primitive again, so a recurrence adds up exactly, step by step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from deepshap.errors import UnsupportedOperationError

__all__ = [
    "gru",
    "gru_cell",
    "lstm",
    "lstm_cell",
    "rnn_relu",
    "rnn_relu_cell",
    "rnn_tanh",
    "rnn_tanh_cell",
]

State = list[torch.Tensor]
Weights = Sequence[torch.Tensor]
Step = tuple[torch.Tensor, State]  # a step's output and its new state
Cell = Callable[[torch.Tensor, State, Weights, bool], Step]
#: torch.lstm's and the others' trailing arguments: has_biases, num_layers, dropout, train, bidirectional,
#: batch_first
Flags = tuple[bool, int, float, bool, bool, bool]
Bias = torch.Tensor | None


def _inputs(x: torch.Tensor, h: torch.Tensor, w: Weights, biases: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The input's and the hidden state's linear maps, ``W_ih x + b_ih`` and ``W_hh h + b_hh``."""
    return F.linear(x, w[0], w[2] if biases else None), F.linear(h, w[1], w[3] if biases else None)


def _lstm_step(x: torch.Tensor, state: State, w: Weights, biases: bool) -> Step:
    """One LSTM step: ``c' = sigma(f) c + sigma(i) tanh(g)``, ``h' = sigma(o) tanh(c')`` (times the
    projection ``w_hr`` where the layer has one)."""
    h, c = state
    from_x, from_h = _inputs(x, h, w, biases)
    i, f, g, o = (from_x + from_h).chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if len(w) > (4 if biases else 2):  # proj_size > 0
        h = F.linear(h, w[-1])
    return h, [h, c]


def _gru_step(x: torch.Tensor, state: State, w: Weights, biases: bool) -> Step:
    """One GRU step: ``n = tanh(i_n + r (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``."""
    (h,) = state
    from_x, from_h = _inputs(x, h, w, biases)
    (i_r, i_z, i_n), (h_r, h_z, h_n) = from_x.chunk(3, -1), from_h.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, [h]


def _rnn_step(activation: Callable[[torch.Tensor], torch.Tensor]) -> Cell:
    """The step of an Elman RNN: ``h' = activation(W_ih x + b_ih + W_hh h + b_hh)``."""

    def step(x: torch.Tensor, state: State, w: Weights, biases: bool) -> Step:
        from_x, from_h = _inputs(x, state[0], w, biases)
        h = activation(from_x + from_h)
        return h, [h]

    return step


def _layers(
    step: Cell,
    x: torch.Tensor,
    hx: Sequence[torch.Tensor],
    params: Weights,
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
) -> tuple[torch.Tensor, ...]:
    """A stacked, possibly bidirectional recurrence over ``x`` (time first unless ``batch_first``): the
    output sequence of the last layer and each state's final value per layer and direction."""
    if train and dropout > 0 and num_layers > 1:
        raise UnsupportedOperationError(
            "a recurrent layer applies dropout between its layers (training mode, random); call model.eval()."
        )
    directions = 2 if bidirectional else 1
    per_cell = len(params) // (num_layers * directions)
    sequence = x.transpose(0, 1) if batch_first else x
    finals: list[list[torch.Tensor]] = [[] for _ in hx]
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            weights = params[k * per_cell : (k + 1) * per_cell]
            state = [s[k] for s in hx]
            steps = range(len(sequence) - 1, -1, -1) if direction else range(len(sequence))
            ys: list[torch.Tensor | None] = [None] * len(sequence)
            for t in steps:
                ys[t], state = step(sequence[t], state, weights, has_biases)
            outputs.append(torch.stack([y for y in ys if y is not None]))
            for final, s in zip(finals, state, strict=True):
                final.append(s)
        sequence = torch.cat(outputs, -1) if directions > 1 else outputs[0]
    output = sequence.transpose(0, 1) if batch_first else sequence
    return (output, *(torch.stack(final) for final in finals))


def _unpacked(name: str, hx: torch.Tensor | Sequence[torch.Tensor]) -> None:
    """Refuse the packed-sequence form ``torch.lstm(data, batch_sizes, hx, ...)``, whose second argument
    is a vector of batch sizes where the padded form has its states."""
    if isinstance(hx, torch.Tensor) and hx.dim() == 1:
        raise UnsupportedOperationError(
            f"{name} on a packed sequence has no rule; pad the sequences (pad_packed_sequence) instead."
        )


def lstm(
    x: torch.Tensor, hx: Sequence[torch.Tensor], params: Weights, *flags: *Flags
) -> tuple[torch.Tensor, ...]:
    """``torch.lstm(input, (h0, c0), params, has_biases, num_layers, dropout, train, bidirectional,
    batch_first)``: ``(output, h_n, c_n)``."""
    _unpacked("torch.lstm", hx)
    return _layers(_lstm_step, x, list(hx), params, *flags)


def gru(x: torch.Tensor, hx: torch.Tensor, params: Weights, *flags: *Flags) -> tuple[torch.Tensor, ...]:
    """``torch.gru(input, h0, params, ...)``: ``(output, h_n)``."""
    _unpacked("torch.gru", hx)
    return _layers(_gru_step, x, [hx], params, *flags)


def rnn_tanh(x: torch.Tensor, hx: torch.Tensor, params: Weights, *flags: *Flags) -> tuple[torch.Tensor, ...]:
    """``torch.rnn_tanh(input, h0, params, ...)``: ``(output, h_n)``."""
    _unpacked("torch.rnn_tanh", hx)
    return _layers(_rnn_step(torch.tanh), x, [hx], params, *flags)


def rnn_relu(x: torch.Tensor, hx: torch.Tensor, params: Weights, *flags: *Flags) -> tuple[torch.Tensor, ...]:
    """``torch.rnn_relu(input, h0, params, ...)``: ``(output, h_n)``."""
    _unpacked("torch.rnn_relu", hx)
    return _layers(_rnn_step(torch.relu), x, [hx], params, *flags)


def _cell_weights(
    w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor | None, b_hh: torch.Tensor | None
) -> tuple[list[torch.Tensor], bool]:
    if b_ih is None or b_hh is None:
        return [w_ih, w_hh], False
    return [w_ih, w_hh, b_ih, b_hh], True


def lstm_cell(
    x: torch.Tensor,
    hx: Sequence[torch.Tensor],
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: Bias = None,
    b_hh: Bias = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.LSTMCell``'s step: ``(h', c')``."""
    _, (h, c) = _lstm_step(x, list(hx), *_cell_weights(w_ih, w_hh, b_ih, b_hh))
    return h, c


def gru_cell(
    x: torch.Tensor,
    hx: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: Bias = None,
    b_hh: Bias = None,
) -> torch.Tensor:
    """``nn.GRUCell``'s step: ``h'``."""
    return _gru_step(x, [hx], *_cell_weights(w_ih, w_hh, b_ih, b_hh))[0]


def rnn_tanh_cell(
    x: torch.Tensor,
    hx: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: Bias = None,
    b_hh: Bias = None,
) -> torch.Tensor:
    """``nn.RNNCell``'s step (tanh): ``h'``."""
    return _rnn_step(torch.tanh)(x, [hx], *_cell_weights(w_ih, w_hh, b_ih, b_hh))[0]


def rnn_relu_cell(
    x: torch.Tensor,
    hx: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: Bias = None,
    b_hh: Bias = None,
) -> torch.Tensor:
    """``nn.RNNCell``'s step (relu): ``h'``."""
    return _rnn_step(torch.relu)(x, [hx], *_cell_weights(w_ih, w_hh, b_ih, b_hh))[0]
