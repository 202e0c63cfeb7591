"""The RNN-T prediction network: a language model over the tokens emitted so far.

Embedding -> LayerNorm -> LSTM layers (optionally with layer norm on the gates and the
cell) -> Linear -> LayerNorm. Parameter names match torchaudio's ``_Predictor``. The
predictor state is torchaudio's layout, ``[[h, c] for each layer]`` with h, c ``(B, D_lstm)``,
because beam search slices and re-batches it.
"""
from typing import List, Optional, Tuple

import torch

from ..dropout import Dropout


class LayerNormLSTM(torch.nn.Module):
    """An LSTM layer written out step by step, with optional LayerNorm on gates and cell.

    Gate order in the ``4 * hidden`` projections: input, forget, cell, output.
    """

    def __init__(self, input_dim: int, hidden_dim: int, layer_norm: bool = False, layer_norm_epsilon: float = 1e-5):
        super().__init__()
        # With layer norm on the gates, the gate LayerNorm's bias makes x2g's bias redundant.
        self.x2g = torch.nn.Linear(input_dim, 4 * hidden_dim, bias=not layer_norm)
        self.p2g = torch.nn.Linear(hidden_dim, 4 * hidden_dim, bias=False)
        if layer_norm:
            self.c_norm = torch.nn.LayerNorm(hidden_dim, eps=layer_norm_epsilon)
            self.g_norm = torch.nn.LayerNorm(4 * hidden_dim, eps=layer_norm_epsilon)
        else:
            self.c_norm = torch.nn.Identity()
            self.g_norm = torch.nn.Identity()
        self.hidden_dim = hidden_dim

    def forward(self, input: torch.Tensor, state: Optional[List[torch.Tensor]]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """``input (U, B, D_in)``, state ``[h, c]`` or None -> ``(output (U, B, D_lstm), [h, c])``."""
        if state is None:
            h = input.new_zeros(input.size(1), self.hidden_dim)
            c = input.new_zeros(input.size(1), self.hidden_dim)
        else:
            h, c = state
        x_gates = self.x2g(input)  # all steps at once; only the recurrent part is sequential
        outputs = []
        for gates in x_gates.unbind(0):
            gates = self.g_norm(gates + self.p2g(h))
            i, f, g, o = gates.chunk(4, 1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            c = self.c_norm(c)
            h = o.sigmoid() * c.tanh()
            outputs.append(h)
        return torch.stack(outputs, dim=0), [h, c]


class Predictor(torch.nn.Module):
    def __init__(
        self,
        num_symbols: int,
        output_dim: int,
        symbol_embedding_dim: int,
        num_lstm_layers: int,
        lstm_hidden_dim: int,
        lstm_layer_norm: bool = False,
        lstm_layer_norm_epsilon: float = 1e-5,
        lstm_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(num_symbols, symbol_embedding_dim)
        self.input_layer_norm = torch.nn.LayerNorm(symbol_embedding_dim)
        self.lstm_layers = torch.nn.ModuleList(
            LayerNormLSTM(symbol_embedding_dim if i == 0 else lstm_hidden_dim, lstm_hidden_dim,
                          layer_norm=lstm_layer_norm, layer_norm_epsilon=lstm_layer_norm_epsilon)
            for i in range(num_lstm_layers)
        )
        self.dropout = Dropout(lstm_dropout)  # x is (U, B, D): the batch is dim 1
        self.linear = torch.nn.Linear(lstm_hidden_dim, output_dim)
        self.output_layer_norm = torch.nn.LayerNorm(output_dim)
        self.num_symbols = num_symbols
        self.lstm_dropout = lstm_dropout

    def forward(
        self, input: torch.Tensor, lengths: torch.Tensor, state: Optional[List[List[torch.Tensor]]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, List[List[torch.Tensor]]]:
        """``input (B, U)`` token ids -> ``(output (B, U, D), lengths, state)``."""
        if input.dim() != 2:
            raise ValueError(f"targets must have shape (B, U), got {tuple(input.shape)}.")
        x = self.input_layer_norm(self.embedding(input.permute(1, 0)))
        state_out = []
        for i, lstm in enumerate(self.lstm_layers):
            x, layer_state = lstm(x, None if state is None else state[i])
            x = self.dropout(x)
            state_out.append(layer_state)
        x = self.output_layer_norm(self.linear(x))
        return x.permute(1, 0, 2), lengths, state_out
