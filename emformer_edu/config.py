"""One configuration for an Emformer RNN-T, validated once, with named presets.

In the spirit of nanoGPT's ``GPTConfig``: every argument of torchaudio's
``emformer_rnnt_model`` is a field, in torchaudio's order, so

    model = emformer_rnnt_model(**asdict(EmformerRNNTConfig.toy()))

keeps torchaudio's exact signature, and ``model.config`` is the dataclass it was built from.
Lengths (``segment_length``, ``right_context_length``) are in *input* frames (10 ms each);
``transformer_left_context_length`` and ``transformer_max_memory_size`` are in *Emformer*
frames and segments, after time reduction by ``time_reduction_stride``.

Presets: :meth:`tiny` for figures you can read cell by cell (notebooks 00 and 06), :meth:`toy` for the model shipped
in ``emformer_edu/train/assets``, :meth:`base` for torchaudio's ``emformer_rnnt_base``.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

from .checks import (
    ACTIVATIONS, WEIGHT_INIT_SCALE_STRATEGIES, check_choice, check_non_negative, check_positive, check_probability,
)


@dataclass(frozen=True)
class EmformerRNNTConfig:
    """Every ``emformer_rnnt_model`` argument (see ``../shared/seed-emformer_rnnt_model.txt``).

    Raises ``ValueError`` naming the field for any value torchaudio would reject, fail on later
    or silently misread (for example a ``segment_length`` that the stride does not divide).
    """

    input_dim: int  # F, mel bins per input frame
    encoding_dim: int  # D of the transcriber and predictor outputs that the joiner adds
    num_symbols: int  # V, tokens + blank
    segment_length: int  # input frames per segment
    right_context_length: int  # R, look-ahead input frames
    time_reduction_input_dim: int  # width of each frame before stacking `stride` of them
    time_reduction_stride: int  # input frames per Emformer frame
    transformer_num_heads: int
    transformer_ffn_dim: int
    transformer_num_layers: int
    transformer_dropout: float
    transformer_activation: str  # "relu" | "gelu" | "silu"
    transformer_left_context_length: int  # Emformer frames
    transformer_max_memory_size: int  # M memory slots, 0 = no memory
    transformer_weight_init_scale_strategy: Optional[str]  # "depthwise" | "constant" | None
    transformer_tanh_on_mem: bool
    symbol_embedding_dim: int
    num_lstm_layers: int
    lstm_layer_norm: bool
    lstm_layer_norm_epsilon: float
    lstm_dropout: float

    def __post_init__(self):
        for name in ("input_dim", "encoding_dim", "segment_length", "time_reduction_input_dim",
                     "time_reduction_stride", "transformer_num_heads", "transformer_ffn_dim",
                     "transformer_num_layers", "symbol_embedding_dim", "num_lstm_layers"):
            check_positive(name, getattr(self, name))
        if isinstance(self.num_symbols, bool) or not isinstance(self.num_symbols, int) or self.num_symbols < 2:
            raise ValueError(f"num_symbols must be an integer >= 2 (at least one token plus the blank), "
                             f"got {self.num_symbols!r}.")
        for name in ("right_context_length", "transformer_left_context_length", "transformer_max_memory_size"):
            check_non_negative(name, getattr(self, name))
        check_probability("transformer_dropout", self.transformer_dropout)
        check_probability("lstm_dropout", self.lstm_dropout)
        check_choice("transformer_activation", self.transformer_activation, ACTIVATIONS)
        check_choice("transformer_weight_init_scale_strategy", self.transformer_weight_init_scale_strategy,
                     WEIGHT_INIT_SCALE_STRATEGIES)
        if not isinstance(self.lstm_layer_norm_epsilon, (int, float)) or not self.lstm_layer_norm_epsilon > 0:
            raise ValueError(f"lstm_layer_norm_epsilon must be > 0 (it keeps LayerNorm from dividing by zero), "
                             f"got {self.lstm_layer_norm_epsilon!r}.")
        stride = self.time_reduction_stride
        for name in ("segment_length", "right_context_length"):
            value = getattr(self, name)
            if value % stride:
                raise ValueError(
                    f"{name} ({value}) must be a multiple of time_reduction_stride ({stride}): "
                    f"it is given in input frames and divided by the stride. torchaudio silently floors it "
                    f"to {value // stride} reduced frames ({value // stride * stride} input frames); "
                    f"pass {name}={value // stride * stride} or {-(-value // stride) * stride} instead."
                )
        if self.segment_length // stride < 1:
            raise ValueError(f"segment_length ({self.segment_length}) must be at least time_reduction_stride ({stride}).")
        if self.model_dim % self.transformer_num_heads:
            raise ValueError(
                f"transformer_num_heads ({self.transformer_num_heads}) must divide the Emformer model dimension "
                f"time_reduction_input_dim * time_reduction_stride = {self.model_dim}."
            )

    @property
    def model_dim(self) -> int:
        """D of the Emformer: ``stride`` stacked frames of ``time_reduction_input_dim``."""
        return self.time_reduction_input_dim * self.time_reduction_stride

    @property
    def blank(self) -> int:
        """The blank is the last symbol, as in torchaudio's recipes."""
        return self.num_symbols - 1

    @classmethod
    def from_dict(cls, values: dict) -> "EmformerRNNTConfig":
        """From a plain dict (a checkpoint's or a JSON file's), with a clear error for missing or unknown keys."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in names if k not in values]
        unknown = [k for k in values if k not in names]
        if missing or unknown:
            raise ValueError(f"a model config must give every emformer_rnnt_model argument: "
                             f"missing {missing}, unknown {unknown}.")
        return cls(**values)

    def replace(self, **changes) -> "EmformerRNNTConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def base(cls, num_symbols: int = 4097) -> "EmformerRNNTConfig":
        """torchaudio's ``emformer_rnnt_base`` (``EMFORMER_RNNT_BASE_LIBRISPEECH``): 20 layers, 76.7 M parameters."""
        return cls(
            input_dim=80, encoding_dim=1024, num_symbols=num_symbols, segment_length=16, right_context_length=4,
            time_reduction_input_dim=128, time_reduction_stride=4, transformer_num_heads=8,
            transformer_ffn_dim=2048, transformer_num_layers=20, transformer_dropout=0.1,
            transformer_activation="gelu", transformer_left_context_length=30, transformer_max_memory_size=0,
            transformer_weight_init_scale_strategy="depthwise", transformer_tanh_on_mem=True,
            symbol_embedding_dim=512, num_lstm_layers=3, lstm_layer_norm=True, lstm_layer_norm_epsilon=1e-3,
            lstm_dropout=0.3,
        )

    @classmethod
    def toy(cls, num_symbols: int = 21) -> "EmformerRNNTConfig":
        """The small streaming model shipped as ``pretrained.toy()``.

        The base recipe's streaming settings (segments of 16 input frames = 160 ms, 4 look-ahead
        frames = 40 ms, stride 4) with memory and left context on, at a width (D = 32 * 4 = 128)
        and depth (3 layers) that a CPU trains in minutes.
        """
        return cls.base(num_symbols).replace(
            encoding_dim=128, time_reduction_input_dim=32, transformer_num_heads=4, transformer_ffn_dim=256,
            transformer_num_layers=3, transformer_left_context_length=8,  # 2 segments = 320 ms
            transformer_max_memory_size=4,  # summaries of the 4 segments before that
            symbol_embedding_dim=64, num_lstm_layers=1, lstm_dropout=0.0,
        )

    @classmethod
    def tiny(cls, num_symbols: int = 10) -> "EmformerRNNTConfig":
        """Small enough to print and draw every tensor: 16 mel bins, D = 8 * 2 = 16, 2 heads, 2 layers,
        segments of 8 input frames (4 Emformer frames), 4 look-ahead frames, left context 4, memory 2."""
        return cls(
            input_dim=16, encoding_dim=32, num_symbols=num_symbols, segment_length=8, right_context_length=4,
            time_reduction_input_dim=8, time_reduction_stride=2, transformer_num_heads=2,
            transformer_ffn_dim=64, transformer_num_layers=2, transformer_dropout=0.0,
            transformer_activation="gelu", transformer_left_context_length=4, transformer_max_memory_size=2,
            transformer_weight_init_scale_strategy="depthwise", transformer_tanh_on_mem=True,
            symbol_embedding_dim=24, num_lstm_layers=2, lstm_layer_norm=True, lstm_layer_norm_epsilon=1e-3,
            lstm_dropout=0.0,
        )
