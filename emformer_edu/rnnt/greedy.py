"""Greedy RNN-T decoding, batched and frame-synchronous (so it also runs chunk by chunk).

At every encoder frame each utterance takes the joiner's argmax; a token is emitted and fed to
the predictor, a blank moves on to the next frame.

Notation: B batch, T frames, V vocabulary (incl. blank), D model dim.
"""
import math
from typing import List, NamedTuple, Optional, Tuple

import torch

from ..checks import check_finite
from .common import PredictorState, _check_batch, _check_blank, _check_positive_int, _predict_blank


class GreedyState(NamedTuple):
    """Everything greedy search needs to continue on the next encoder frames.

    tokens[b], timesteps[b]: emitted non-blank tokens of utterance b and the
        (global) encoder frame at which each was emitted.
    predictor_out: (B, 1, D) predictor output for the last emitted token.
    predictor_state: predictor state after the last emitted token.
    num_frames[b]: encoder frames of utterance b consumed so far.
    """

    tokens: List[List[int]]
    timesteps: List[List[int]]
    predictor_out: torch.Tensor
    predictor_state: PredictorState
    num_frames: List[int]


def _rowwise_where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Rows b of ``new`` where mask[b], else rows of ``old`` (batch is dim 0)."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def _greedy_initial_state(model, batch_size: int, blank: int, device: torch.device) -> GreedyState:
    pred_out, pred_state = _predict_blank(model, batch_size, blank, device)
    return GreedyState(
        [[] for _ in range(batch_size)], [[] for _ in range(batch_size)], pred_out, pred_state, [0] * batch_size
    )


@torch.no_grad()
def greedy_search(
    model,
    enc_out: torch.Tensor,
    enc_lengths: torch.Tensor,
    blank: int,
    max_symbols_per_frame: int = 10,
    state: Optional[GreedyState] = None,
) -> GreedyState:
    """Greedy RNN-T search over encoder frames, vectorised over the batch.

    At every frame t each utterance repeatedly takes the argmax of the joiner;
    a non-blank argmax is emitted (and fed to the predictor), a blank argmax, or
    ``max_symbols_per_frame`` emissions, moves it to frame t+1. All utterances
    advance together: one ``join`` and at most one ``predict`` call per step.

    Args:
        model: RNN-T with torchaudio's interface.
        enc_out: (B, T, D) encoder output.
        enc_lengths: (B,) valid encoder frames (clamped to T).
        blank: blank index in [0, V).
        max_symbols_per_frame: cap on tokens emitted per encoder frame.
        state: result of a previous call, to continue frame-synchronously
            (streaming); ``None`` starts from the blank context.

    Returns:
        GreedyState with the cumulative tokens/timesteps (global frame indices).

    Raises:
        ValueError: NaN or inf in ``enc_out`` or in the joiner's logits (it says where).
    """
    _check_batch(enc_out, enc_lengths)
    _check_positive_int("max_symbols_per_frame", max_symbols_per_frame)
    check_finite(enc_out, "enc_out")  # argmax of NaN logits is token 0: a confident wrong transcript
    B, T, _ = enc_out.shape
    device = enc_out.device
    if state is None:
        state = _greedy_initial_state(model, B, blank, device)
    elif len(state.tokens) != B:
        raise ValueError(f"state is for batch size {len(state.tokens)}, input has B={B}")
    tokens = [list(x) for x in state.tokens]
    timesteps = [list(x) for x in state.timesteps]
    pred_out, pred_state = state.predictor_out, state.predictor_state

    lengths = enc_lengths.to(device).clamp(min=0, max=T)
    lengths_list = lengths.tolist()
    ones = torch.ones(B, dtype=torch.long, device=device)
    checked = False
    for t in range(max(lengths_list, default=0)):
        enc_t = enc_out[:, t : t + 1]  # (B, 1, D)
        active = lengths > t  # (B,) still allowed to emit at frame t
        for _ in range(max_symbols_per_frame):
            logits = model.join(enc_t, ones, pred_out, ones)[0][:, 0, 0]  # (B, V)
            if not checked:
                _check_blank(blank, logits.shape[-1])
                checked = True
            top, best = logits.max(dim=-1)  # (B,): argmax, and its value to test cheaply
            if not all(map(math.isfinite, top.tolist())):  # a NaN or +inf logit becomes its row's max
                check_finite(logits, "joiner logits")  # e.g. a model whose weights hold NaN
            emit = active & (best != blank)
            rows = emit.nonzero().flatten().tolist()
            if not rows:
                break
            best_list = best.tolist()
            for b in rows:
                tokens[b].append(best_list[b])
                timesteps[b].append(state.num_frames[b] + t)
            new_out, _, new_state = model.predict(best.unsqueeze(1), ones, pred_state)
            pred_out = _rowwise_where(emit, new_out, pred_out)
            pred_state = [[_rowwise_where(emit, n, o) for n, o in zip(nl, ol)] for nl, ol in zip(new_state, pred_state)]
            active = emit
    num_frames = [n + length for n, length in zip(state.num_frames, lengths_list)]
    return GreedyState(tokens, timesteps, pred_out, pred_state, num_frames)


def greedy_decode(
    model, input: torch.Tensor, lengths: torch.Tensor, blank: int, max_symbols_per_frame: int = 10
) -> Tuple[List[List[int]], List[List[int]]]:
    """Full-context greedy decoding of a batch.

    Args:
        input: (B, T + right context, F) features; lengths: (B,) as for ``model.transcribe``.

    Returns:
        (tokens, timesteps): per utterance, the emitted non-blank tokens and the
        encoder frame at which each was emitted.
    """
    _check_batch(input, lengths)
    check_finite(input, "input")  # before the encoder, so the message points at the features
    enc_out, enc_lengths = model.transcribe(input, lengths)
    state = greedy_search(model, enc_out, enc_lengths, blank, max_symbols_per_frame)
    return state.tokens, state.timesteps


def greedy_infer(
    model,
    input: torch.Tensor,
    lengths: torch.Tensor,
    blank: int,
    state=None,
    decoder_state: Optional[GreedyState] = None,
    max_symbols_per_frame: int = 10,
):
    """Streaming greedy decoding of one chunk (mirrors ``RNNTBeamSearch.infer``).

    Args:
        input: (B, segment + right context, F) chunk; lengths: (B,).
        state: transcriber state from the previous chunk (opaque) or None.
        decoder_state: GreedyState from the previous chunk or None.

    Returns:
        (decoder_state, state): cumulative GreedyState and the new transcriber state.
    """
    _check_batch(input, lengths)
    check_finite(input, "input")
    enc_out, enc_lengths, state = model.transcribe_streaming(input, lengths, state)
    decoder_state = greedy_search(model, enc_out, enc_lengths, blank, max_symbols_per_frame, decoder_state)
    return decoder_state, state
