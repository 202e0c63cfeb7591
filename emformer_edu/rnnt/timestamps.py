"""Emission times: from the encoder frame at which a token was emitted to input frames and seconds.

Every decoder records, for each emitted token, the *encoder frame* ``t`` at which it was emitted
(its "timestep"). Encoder frame ``t`` summarises input frames ``[t * stride, (t + 1) * stride)``.
"""
from typing import List, NamedTuple, Sequence

from .common import _check_positive_int


class TokenTimestamp(NamedTuple):
    """When a token was emitted.

    ``encoder_frame`` is the encoder (post time-reduction) frame index; the
    encoder frame ``t`` summarises input frames ``[t*stride, (t+1)*stride)``, and we
    report the first of them as ``input_frame`` and its start time as ``seconds``.
    Note that a streaming Emformer decides about frame ``t`` only after it has seen
    ``right_context_length`` more input frames, so the *latency* is larger than this.
    """

    token: int
    encoder_frame: int
    input_frame: int
    seconds: float


def token_timestamps(
    tokens: Sequence[int],
    timesteps: Sequence[int],
    time_reduction_stride: int,
    hop_length: int = 160,
    sample_rate: int = 16000,
) -> List[TokenTimestamp]:
    """Convert per-token encoder frame indices into input frames and seconds.

    Args:
        tokens: token ids, e.g. ``hypothesis.tokens`` or ``greedy_state.tokens[b]``.
        timesteps: encoder frame of each token (same length as ``tokens``).
            Negative entries (beam search's leading blank, or history whose
            frames are unknown) are skipped.
        time_reduction_stride: input frames per encoder frame (e.g. 4).
        hop_length, sample_rate: feature hop in samples and the sample rate;
            the default 160 @ 16 kHz is a 10 ms hop.

    Returns:
        ``input_frame = encoder_frame * time_reduction_stride`` and
        ``seconds = input_frame * hop_length / sample_rate`` for every token.
    """
    if timesteps is None:
        raise ValueError("no timesteps: this hypothesis carries no emission frames (e.g. a torchaudio tuple)")
    if len(tokens) != len(timesteps):
        raise ValueError(f"tokens ({len(tokens)}) and timesteps ({len(timesteps)}) differ in length")
    _check_positive_int("time_reduction_stride", time_reduction_stride)
    _check_positive_int("hop_length", hop_length)
    _check_positive_int("sample_rate", sample_rate)
    out = []
    for token, t in zip(tokens, timesteps):
        if t < 0:
            continue
        input_frame = t * time_reduction_stride
        out.append(TokenTimestamp(int(token), int(t), input_frame, input_frame * hop_length / sample_rate))
    return out
