"""Streaming input: cut an utterance's features into the chunks ``transcribe_streaming`` takes,
and what that costs in latency.

A streaming recognizer receives features as they are computed. Chunk i holds input frames
``[i * segment_length, (i + 1) * segment_length + R)``: one segment and the R look-ahead frames
after it, so consecutive chunks overlap by R frames. The last chunk is zero-padded to full size,
and its length counts only real frames, so the padding stays out of attention.

Notation: B batch, T input frames (without the R right-padding frames), F mel bins,
R right context (look-ahead) in input frames.
"""
from typing import List, Optional, Tuple

import torch


def streaming_chunks(
    features: torch.Tensor, segment_length: int, right_context_length: int, lengths: Optional[torch.Tensor] = None,
) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Cut features into ``[(chunk, chunk_lengths), ...]`` for ``model.transcribe_streaming``.

    Args:
        features: ``(T + R, F)`` for one utterance, or ``(B, T + R, F)`` for a batch, as
            :class:`~emformer_edu.data.features.FeatureExtractor` returns them: T real frames
            followed by R = ``right_context_length`` frames of right padding.
        segment_length, right_context_length: in input frames (the model's settings).
        lengths: ``(B,)`` real frames T_b of each utterance (without R); default: all T.

    Returns:
        One ``(chunk (B, segment_length + R, F), chunk_lengths (B,))`` per segment, enough to cover
        every frame, the utterance's tail included. ``chunk_lengths[b]`` counts the frames of
        utterance b in the chunk (look-ahead included): ``segment_length + R`` until its last chunk.
    """
    single = features.dim() == 2
    x = features.unsqueeze(0) if single else features
    if x.dim() != 3:
        raise ValueError(f"features must have shape (T + R, F) or (B, T + R, F), got {tuple(features.shape)}.")
    T = x.size(1) - right_context_length
    if T < 1:
        raise ValueError(
            f"features hold {x.size(1)} frames, which is not more than right_context_length ({right_context_length}): "
            "no real frames to decode (did you forget the right padding or pass an empty utterance?)."
        )
    if lengths is None:
        lengths = torch.full((x.size(0),), T, dtype=torch.long, device=x.device)
    elif lengths.shape != (x.size(0),) or int(lengths.max()) > T or int(lengths.min()) < 1:
        raise ValueError(f"lengths must be (B,) = ({x.size(0)},) values in [1, {T}], got {lengths.tolist()}.")
    size = segment_length + right_context_length
    x = torch.nn.functional.pad(x, (0, 0, 0, size))  # room for a full last chunk
    chunks = []
    for start in range(0, T, segment_length):
        valid = (lengths.to(x.device) + right_context_length - start).clamp(min=0, max=size)
        chunks.append((x[:, start: start + size], valid))
    return chunks


def latency_ms(segment_length: int, right_context_length: int, time_reduction_stride: int = 1,
               left_context_length: int = 0, frame_ms: float = 10.0) -> dict:
    """Streaming latency arithmetic for a chunk of ``segment_length + R`` *input* frames.

    A frame at the start of a segment waits for the rest of the segment and the look-ahead
    before it can be encoded; the last frame waits only for the look-ahead. Returns
    milliseconds: ``segment``, ``look_ahead``, ``worst`` (first frame), ``best`` (last frame),
    ``average``, the encoder frame duration ``encoder_frame`` after time reduction, and the
    ``left_context`` span (given in encoder frames, as ``transformer_left_context_length`` is).
    """
    segment, look_ahead = segment_length * frame_ms, right_context_length * frame_ms
    return {
        "segment": segment,
        "look_ahead": look_ahead,
        "worst": segment + look_ahead - frame_ms,
        "best": look_ahead,
        "average": (segment - frame_ms) / 2 + look_ahead,
        "encoder_frame": time_reduction_stride * frame_ms,
        "left_context": left_context_length * time_reduction_stride * frame_ms,
    }
