"""The Emformer RNN-T model: transcriber + predictor + joiner, and its factories.

* transcriber (``EmformerEncoder``): Linear -> time reduction -> Emformer -> Linear -> LayerNorm
* predictor: token LSTM (see :mod:`emformer_edu.transducer.predictor`)
* joiner: add, ReLU, Linear (see :mod:`emformer_edu.transducer.joiner`)

``RNNT``, ``emformer_rnnt_model`` and ``emformer_rnnt_base`` have torchaudio's signatures,
shapes, length semantics and ``state_dict`` keys; a torchaudio checkpoint loads with
``strict=True`` and gives the same outputs.

Notation: B batch, T input frames, U target length, V vocabulary (num_symbols), D encoding dim.
"""
from typing import List, Optional, Tuple

import torch

from ..checks import check_chunk_length, check_features, check_finite, check_lengths
from ..config import EmformerRNNTConfig
from ..encoder.emformer import Emformer, EmformerState
from .joiner import Joiner
from .predictor import Predictor
from .time_reduction import TimeReduction


class EmformerEncoder(torch.nn.Module):
    """The transcription network. Lengths and chunk sizes are in *input* frames.

    ``segment_length`` and ``right_context_length`` are given in input frames and divided by
    the stride for the Emformer, which runs after time reduction.
    """

    def __init__(
        self, *, input_dim: int, output_dim: int, segment_length: int, right_context_length: int,
        time_reduction_input_dim: int, time_reduction_stride: int, transformer_num_heads: int,
        transformer_ffn_dim: int, transformer_num_layers: int, transformer_left_context_length: int,
        transformer_dropout: float = 0.0, transformer_activation: str = "relu",
        transformer_max_memory_size: int = 0, transformer_weight_init_scale_strategy: str = "depthwise",
        transformer_tanh_on_mem: bool = False,
    ) -> None:
        super().__init__()
        self.input_linear = torch.nn.Linear(input_dim, time_reduction_input_dim, bias=False)
        self.time_reduction = TimeReduction(time_reduction_stride)
        transformer_input_dim = time_reduction_input_dim * time_reduction_stride
        self.transformer = Emformer(
            transformer_input_dim, transformer_num_heads, transformer_ffn_dim, transformer_num_layers,
            segment_length // time_reduction_stride, dropout=transformer_dropout,
            activation=transformer_activation, left_context_length=transformer_left_context_length,
            right_context_length=right_context_length // time_reduction_stride,
            max_memory_size=transformer_max_memory_size,
            weight_init_scale_strategy=transformer_weight_init_scale_strategy,
            tanh_on_mem=transformer_tanh_on_mem,
        )
        self.output_linear = torch.nn.Linear(transformer_input_dim, output_dim)
        self.layer_norm = torch.nn.LayerNorm(output_dim)
        self.input_dim = input_dim
        self.segment_length = segment_length
        self.right_context_length = right_context_length

    def _check(self, input: torch.Tensor, lengths: torch.Tensor, name: str) -> None:
        check_features(input, self.input_dim, name)
        if input.size(0) == 0:
            raise ValueError(f"{name} is an empty batch (shape {tuple(input.shape)}): B must be at least 1.")
        check_lengths(lengths, input.size(0), input.size(1), what=f"{name.replace('sources', 'source')}_lengths")
        check_finite(input, name)

    def forward(self, input: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``input (B, T, F)`` (right context included), ``lengths (B,)`` -> ``((B, T', D), (B,))``."""
        self._check(input, lengths, "sources")
        x, lengths = self.time_reduction(self.input_linear(input), lengths)
        x, lengths = self.transformer(x, lengths)
        return self.layer_norm(self.output_linear(x)), lengths

    def infer(
        self, input: torch.Tensor, lengths: torch.Tensor, states: Optional[EmformerState]
    ) -> Tuple[torch.Tensor, torch.Tensor, EmformerState]:
        """One chunk ``(B, segment_length + R, F)`` -> ``((B, segment_length / stride, D), (B,), states)``."""
        check_chunk_length(input, self.segment_length, self.right_context_length, unit="input frames")
        self._check(input, lengths, "sources")
        x, lengths = self.time_reduction(self.input_linear(input), lengths)
        x, lengths, states = self.transformer.infer(x, lengths, states)
        return self.layer_norm(self.output_linear(x)), lengths, states


class RNNT(torch.nn.Module):
    """Recurrent neural network transducer (torchaudio-compatible).

    Build it with :func:`emformer_rnnt_model` or :func:`emformer_rnnt_base`.
    """

    def __init__(self, transcriber: EmformerEncoder, predictor: Predictor, joiner: Joiner) -> None:
        super().__init__()
        self.transcriber = transcriber
        self.predictor = predictor
        self.joiner = joiner

    def forward(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, targets: torch.Tensor,
        target_lengths: torch.Tensor, predictor_state: Optional[List[List[torch.Tensor]]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[List[torch.Tensor]]]:
        """Training pass.

        Args:
            sources: ``(B, T, F)`` features, right context included. source_lengths: ``(B,)``.
            targets: ``(B, U)`` token ids, *prepended with blank* as the start symbol, as in torchaudio.
            target_lengths: ``(B,)``.
        Returns:
            ``(logits (B, T', U, V), source_lengths (B,), target_lengths (B,), predictor_state)``.
        """
        V = self.predictor.num_symbols
        if targets.dim() == 2 and targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= V):
            raise ValueError(f"targets must be token ids in [0, num_symbols={V}), got range "
                             f"[{int(targets.min())}, {int(targets.max())}].")
        source_encodings, source_lengths = self.transcriber(input=sources, lengths=source_lengths)
        target_encodings, target_lengths, predictor_state = self.predictor(
            input=targets, lengths=target_lengths, state=predictor_state
        )
        output, source_lengths, target_lengths = self.joiner(
            source_encodings=source_encodings, source_lengths=source_lengths,
            target_encodings=target_encodings, target_lengths=target_lengths,
        )
        return output, source_lengths, target_lengths, predictor_state

    def transcribe_streaming(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, state: Optional[EmformerState]
    ) -> Tuple[torch.Tensor, torch.Tensor, EmformerState]:
        """Encode one chunk of ``segment_length + right_context_length`` input frames.

        Returns ``(encodings (B, segment_length / stride, D), lengths (B,), state)``; pass the
        state back with the next chunk.
        """
        return self.transcriber.infer(sources, source_lengths, state)

    def transcribe(self, sources: torch.Tensor, source_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode whole utterances ``(B, T, F)`` (right-padded with R frames) -> ``((B, T', D), (B,))``."""
        return self.transcriber(sources, source_lengths)

    def predict(
        self, targets: torch.Tensor, target_lengths: torch.Tensor, state: Optional[List[List[torch.Tensor]]]
    ) -> Tuple[torch.Tensor, torch.Tensor, List[List[torch.Tensor]]]:
        """Run the predictor on ``(B, U)`` tokens -> ``((B, U, D), (B,), state)``."""
        return self.predictor(input=targets, lengths=target_lengths, state=state)

    def join(
        self, source_encodings: torch.Tensor, source_lengths: torch.Tensor,
        target_encodings: torch.Tensor, target_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, T, D)`` and ``(B, U, D)`` -> ``(logits (B, T, U, V), source_lengths, target_lengths)``."""
        return self.joiner(source_encodings=source_encodings, source_lengths=source_lengths,
                           target_encodings=target_encodings, target_lengths=target_lengths)


def emformer_rnnt_model(
    *,
    input_dim: int,
    encoding_dim: int,
    num_symbols: int,
    segment_length: int,
    right_context_length: int,
    time_reduction_input_dim: int,
    time_reduction_stride: int,
    transformer_num_heads: int,
    transformer_ffn_dim: int,
    transformer_num_layers: int,
    transformer_dropout: float,
    transformer_activation: str,
    transformer_left_context_length: int,
    transformer_max_memory_size: int,
    transformer_weight_init_scale_strategy: str,
    transformer_tanh_on_mem: bool,
    symbol_embedding_dim: int,
    num_lstm_layers: int,
    lstm_layer_norm: bool,
    lstm_layer_norm_epsilon: float,
    lstm_dropout: float,
) -> RNNT:
    """Build an Emformer-based RNN-T (same signature and parameters as torchaudio's).

    For non-streaming inference call ``transcribe`` on inputs right-padded with
    ``right_context_length`` frames; for streaming call ``transcribe_streaming`` on chunks of
    ``segment_length + right_context_length`` frames. Lengths are in input frames.
    The arguments are validated once, by :class:`~emformer_edu.config.EmformerRNNTConfig`, which
    raises ``ValueError`` for configurations torchaudio would accept but silently misread.
    Usually called as ``emformer_rnnt_model(**dataclasses.asdict(config))``.
    """
    cfg = EmformerRNNTConfig(
        input_dim=input_dim, encoding_dim=encoding_dim, num_symbols=num_symbols, segment_length=segment_length,
        right_context_length=right_context_length, time_reduction_input_dim=time_reduction_input_dim,
        time_reduction_stride=time_reduction_stride, transformer_num_heads=transformer_num_heads,
        transformer_ffn_dim=transformer_ffn_dim, transformer_num_layers=transformer_num_layers,
        transformer_dropout=transformer_dropout, transformer_activation=transformer_activation,
        transformer_left_context_length=transformer_left_context_length,
        transformer_max_memory_size=transformer_max_memory_size,
        transformer_weight_init_scale_strategy=transformer_weight_init_scale_strategy,
        transformer_tanh_on_mem=transformer_tanh_on_mem, symbol_embedding_dim=symbol_embedding_dim,
        num_lstm_layers=num_lstm_layers, lstm_layer_norm=lstm_layer_norm,
        lstm_layer_norm_epsilon=lstm_layer_norm_epsilon, lstm_dropout=lstm_dropout,
    )
    return build_model(cfg)


def build_model(cfg: EmformerRNNTConfig) -> RNNT:
    """The RNN-T of a validated config; ``model.config`` is ``cfg`` (not part of the ``state_dict``)."""
    encoder = EmformerEncoder(
        input_dim=cfg.input_dim, output_dim=cfg.encoding_dim, segment_length=cfg.segment_length,
        right_context_length=cfg.right_context_length, time_reduction_input_dim=cfg.time_reduction_input_dim,
        time_reduction_stride=cfg.time_reduction_stride, transformer_num_heads=cfg.transformer_num_heads,
        transformer_ffn_dim=cfg.transformer_ffn_dim, transformer_num_layers=cfg.transformer_num_layers,
        transformer_dropout=cfg.transformer_dropout, transformer_activation=cfg.transformer_activation,
        transformer_left_context_length=cfg.transformer_left_context_length,
        transformer_max_memory_size=cfg.transformer_max_memory_size,
        transformer_weight_init_scale_strategy=cfg.transformer_weight_init_scale_strategy,
        transformer_tanh_on_mem=cfg.transformer_tanh_on_mem,
    )
    predictor = Predictor(
        cfg.num_symbols, cfg.encoding_dim, symbol_embedding_dim=cfg.symbol_embedding_dim,
        num_lstm_layers=cfg.num_lstm_layers, lstm_hidden_dim=cfg.symbol_embedding_dim,
        lstm_layer_norm=cfg.lstm_layer_norm, lstm_layer_norm_epsilon=cfg.lstm_layer_norm_epsilon,
        lstm_dropout=cfg.lstm_dropout,
    )
    model = RNNT(encoder, predictor, Joiner(cfg.encoding_dim, cfg.num_symbols))
    model.config = cfg  # so the model can be rebuilt (torchaudio twin, checkpoints)
    return model


def emformer_rnnt_base(num_symbols: int) -> RNNT:
    """The published base configuration (torchaudio's ``EMFORMER_RNNT_BASE_LIBRISPEECH`` model)."""
    return build_model(EmformerRNNTConfig.base(num_symbols))
