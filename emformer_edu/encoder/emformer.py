"""Emformer: an efficient memory transformer for streaming speech (Shi et al., 2021).

``Emformer.forward`` processes a whole utterance in one pass (training and full-context
inference); ``Emformer.infer`` processes one chunk of ``segment_length + R`` frames at a
time, carrying a per-layer :class:`~emformer_edu.layer.LayerState`. Given the same input
the two produce the same output (``tests/test_streaming.py`` checks it to 1e-9 in float64).

Signature and ``state_dict`` match ``torchaudio.models.Emformer``. Inputs are batch-major
``(B, T + R, D)`` as in torchaudio; internally time-major ``(T, B, D)``.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from ..checks import (
    ACTIVATIONS, WEIGHT_INIT_SCALE_STRATEGIES, check_choice, check_chunk_length, check_finite, check_lengths,
    check_non_negative, check_positive, check_probability,
)
from .layer import EmformerLayer, LayerState, weight_init_gains
from .masks import cached_training_mask
from .memory_bank import empty_memory, summarize_segments
from .probe import Probe
from .segments import split_utterance_and_right_context

EmformerState = List[LayerState]


class Emformer(torch.nn.Module):
    """Emformer encoder (torchaudio-compatible).

    Args:
        input_dim: D, the model dimension. num_heads: H, must divide D. ffn_dim: feed-forward width.
        num_layers: number of layers. segment_length: frames per segment.
        dropout, activation ("relu" | "gelu" | "silu"): feed-forward settings.
        left_context_length: L past frames each segment attends to.
        right_context_length: R look-ahead frames. max_memory_size: M memory slots (0 = off).
        weight_init_scale_strategy: "depthwise" | "constant" | None.
        tanh_on_mem: squash memory with tanh instead of clamping to ±10.
        negative_inf: value written into blocked attention logits.
    """

    def __init__(
        self,
        input_dim: int,
        num_heads: int,
        ffn_dim: int,
        num_layers: int,
        segment_length: int,
        dropout: float = 0.0,
        activation: str = "relu",
        left_context_length: int = 0,
        right_context_length: int = 0,
        max_memory_size: int = 0,
        weight_init_scale_strategy: Optional[str] = "depthwise",
        tanh_on_mem: bool = False,
        negative_inf: float = -1e8,
    ):
        super().__init__()
        # The one place an Emformer's arguments are checked (the RNN-T factory checks its own in
        # EmformerRNNTConfig, in input frames, before it gets here).
        for name, value in [("input_dim", input_dim), ("num_heads", num_heads), ("ffn_dim", ffn_dim),
                            ("num_layers", num_layers), ("segment_length", segment_length)]:
            check_positive(name, value)
        for name, value in [("left_context_length", left_context_length),
                            ("right_context_length", right_context_length), ("max_memory_size", max_memory_size)]:
            check_non_negative(name, value)
        check_probability("dropout", dropout)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("weight_init_scale_strategy", weight_init_scale_strategy, WEIGHT_INIT_SCALE_STRATEGIES)
        if input_dim % num_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must divide the model dimension input_dim ({input_dim}).")
        gains = weight_init_gains(weight_init_scale_strategy, num_layers)
        self.emformer_layers = torch.nn.ModuleList(
            EmformerLayer(
                input_dim, num_heads, ffn_dim, segment_length, dropout=dropout, activation=activation,
                left_context_length=left_context_length, max_memory_size=max_memory_size,
                weight_init_gain=gains[i], tanh_on_mem=tanh_on_mem, negative_inf=negative_inf,
            )
            for i in range(num_layers)
        )
        self.input_dim = input_dim
        self.segment_length = segment_length
        self.left_context_length = left_context_length
        self.right_context_length = right_context_length
        self.max_memory_size = max_memory_size
        self.use_mem = max_memory_size > 0
        self.probe = Probe()  # tap for emformer_edu.record(): no parameters, no effect

    def _geometry(self) -> dict:
        return dict(segment_length=self.segment_length, right_context_length=self.right_context_length,
                    left_context_length=self.left_context_length, max_memory_size=self.max_memory_size)

    def _check_input(self, input: torch.Tensor, lengths: torch.Tensor) -> None:
        if input.dim() != 3 or input.size(2) != self.input_dim:
            raise ValueError(f"input must have shape (B, T, {self.input_dim}), got {tuple(input.shape)}.")
        if input.size(0) == 0:
            raise ValueError(f"input is an empty batch (shape {tuple(input.shape)}): B must be at least 1.")
        check_lengths(lengths, input.size(0), input.size(1))
        check_finite(input)

    def forward(self, input: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Full-context pass.

        Args:
            input: ``(B, T + R, D)``, utterance frames followed by R right-context frames.
            lengths: ``(B,)`` valid frames per element.
        Returns:
            ``(output, lengths)``: output ``(B, T, D)``; lengths unchanged.
        """
        self._check_input(input, lengths)
        utterance, right_context = split_utterance_and_right_context(
            input.permute(1, 0, 2), self.segment_length, self.right_context_length
        )
        T = utterance.size(0)
        mask = cached_training_mask(T, self.segment_length, self.right_context_length, self.left_context_length,
                                    self.max_memory_size, device=input.device)
        # Layer 0's memory is the plain average of each segment; the last one is never read.
        memory = summarize_segments(utterance, self.segment_length)[:-1] if self.use_mem else empty_memory(utterance)
        output = utterance
        for i, layer in enumerate(self.emformer_layers):
            # Training skips what nobody reads: the last layer's right-context and memory outputs.
            # (Eval computes them, as torchaudio does, so recordings show every query of every layer.)
            last = self.training and i == len(self.emformer_layers) - 1
            output, right_context, memory = layer(output, lengths, right_context, memory, mask, utterance_only=last)
        self.probe(mode="forward", attention_mask=mask, utterance_length=T, frames_before=0, **self._geometry())
        return output.permute(1, 0, 2), lengths

    def infer(
        self, input: torch.Tensor, lengths: torch.Tensor, states: Optional[Sequence[Sequence[torch.Tensor]]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, EmformerState]:
        """Streaming pass over one chunk.

        Args:
            input: ``(B, segment_length + R, D)``, one segment followed by its R look-ahead frames.
            lengths: ``(B,)`` valid frames in the chunk (look-ahead included).
            states: the states returned by the previous call, or None for the first chunk.
                torchaudio's list-of-lists states are accepted too.
        Returns:
            ``(output, output_lengths, states)``: output ``(B, segment_length, D)``,
            output_lengths ``lengths - R`` (at least 0), and one :class:`LayerState` per layer.
        """
        check_chunk_length(input, self.segment_length, self.right_context_length)
        self._check_input(input, lengths)
        B = input.size(0)
        if states is not None:
            states = [LayerState(*s) for s in states]
            self._check_states(states, B)
        x = input.permute(1, 0, 2)
        utterance, right_context = x[: self.segment_length], x[self.segment_length:]
        output_lengths = torch.clamp(lengths - self.right_context_length, min=0)
        memory = summarize_segments(utterance, self.segment_length) if self.use_mem else empty_memory(utterance)
        past = 0 if states is None else int(states[0].past_length[0][0])
        # Every layer has processed the same frames, so one mask serves them all.
        mask = self.emformer_layers[0].inference_mask(past, self.right_context_length, input.device)
        output, new_states = utterance, []
        for i, layer in enumerate(self.emformer_layers):
            output, right_context, state, memory = layer.infer(
                output, output_lengths, right_context, None if states is None else states[i], memory, mask
            )
            new_states.append(state)
        self.probe(mode="infer", attention_mask=mask, utterance_length=self.segment_length, frames_before=past,
                   state_before=states, state_after=new_states, **self._geometry())
        return output.permute(1, 0, 2), output_lengths, new_states

    def _check_states(self, states: List[LayerState], batch_size: int) -> None:
        """A state must come from an Emformer of the same shape, and from a batch of the same size."""
        if len(states) != len(self.emformer_layers):
            raise ValueError(f"states must hold one entry per layer ({len(self.emformer_layers)}), got {len(states)}.")
        if states[0].past_length.size(1) != batch_size:
            raise ValueError(
                f"The streaming state was created for batch size {states[0].past_length.size(1)}, "
                f"but this chunk has batch size {batch_size}. Start a new state (states=None) for a new batch."
            )
        expected = {"memory": (self.max_memory_size, "max_memory_size"),
                    "left_context_key": (self.left_context_length, "left_context_length"),
                    "left_context_val": (self.left_context_length, "left_context_length")}
        for i, s in enumerate(states):
            for name, (slots, setting) in expected.items():
                t = getattr(s, name)
                if t.dim() != 3 or tuple(t.shape) != (slots, batch_size, self.input_dim):
                    raise ValueError(
                        f"states[{i}].{name} has shape {tuple(t.shape)}, but this Emformer expects "
                        f"({slots}, {batch_size}, {self.input_dim}) = ({setting}, B, input_dim): "
                        "the state comes from a model with another configuration. Start a new state (states=None)."
                    )


def to_torchaudio_state(states: EmformerState) -> List[List[torch.Tensor]]:
    """Convert to torchaudio's ``List[List[Tensor]]`` layout (same tensors, same order)."""
    return [list(s) for s in states]


def describe_state(states: EmformerState) -> str:
    """One line per layer with the cache shapes and frames processed, for printing in notebooks."""
    lines = []
    for i, s in enumerate(states):
        lines.append(
            f"layer {i}: memory {tuple(s.memory.shape)}, left_context_key {tuple(s.left_context_key.shape)}, "
            f"left_context_val {tuple(s.left_context_val.shape)}, past_length {s.past_length.flatten().tolist()}"
        )
    return "\n".join(lines)
