"""Notebook 05 (streaming = full context): lay out the hard copies, write the streaming loop, and predict
the look-ahead a design without hard copies would need.

* ``05.hard_copies`` (coding): the learner's right-context blocks are compared with the library's
  :func:`~emformer_edu.encoder.segments.split_utterance_and_right_context`, the function ``Emformer.forward``
  calls, on small and random utterances (whole and partly filled last segments).
* ``05.streaming_loop`` (coding): the learner streams features chunk by chunk through the shipped spoken
  model (in float64); the result is compared with the library's full-context ``model.transcribe`` on
  random features: streaming must equal full context.
* ``05.lookahead_without_copies``: the look-ahead, in encoder frames, of a 6-layer Emformer whose segments
  attend to the next segment's frames instead of hard copies, propagated through that design's masks
  (:mod:`emformer_edu.teaching.ablations`).
"""
import copy
import functools

import torch

from ...encoder.masks import training_mask
from ...encoder.segments import split_utterance_and_right_context
from .. import ablations
from ._shared import Exercise, spoken


def _right_context_blocks(frames: torch.Tensor, segment_length: int, right_context_length: int) -> torch.Tensor:
    """The library's hard copies of one utterance: ``(T + R, D)`` -> ``(N * R, D)``."""
    _, right_context = split_utterance_and_right_context(frames.unsqueeze(1), segment_length, right_context_length)
    return right_context.squeeze(1)


def _hard_copy_cases():
    cases = []
    # Small ones first, frames numbered so a wrong block is easy to read: a whole and a partly filled last segment.
    for T, S, R, D in [(8, 4, 2, 1), (10, 4, 2, 1), (9, 3, 1, 2)]:
        cases.append(dict(frames=torch.arange((T + R) * D, dtype=torch.float32).reshape(T + R, D),
                          segment_length=S, right_context_length=R))
    for _ in range(4):
        S, R = int(torch.randint(2, 7, ())), int(torch.randint(1, 4, ()))
        T, D = int(torch.randint(S + 1, 5 * S + 1, ())), int(torch.randint(1, 5, ()))
        cases.append(dict(frames=torch.randn(T + R, D), segment_length=S, right_context_length=R))
    return cases


@functools.lru_cache(maxsize=None)
def _spoken_float64():
    """The shipped spoken RNN-T in float64: streaming and full context then agree to ~1e-15, far inside the check's
    relative 1e-3 even for encodings near zero."""
    return copy.deepcopy(spoken().model).double().eval()


def _full_context(model, features: torch.Tensor) -> torch.Tensor:
    """The library's full-context encodings ``(1, T', D)`` of one utterance ``(T + R, F)``."""
    with torch.no_grad():
        out, _ = model.transcribe(features.unsqueeze(0), torch.tensor([features.size(0)]))
    return out


def _streaming_cases():
    model = _spoken_float64()
    seg, R = model.transcriber.segment_length, model.transcriber.right_context_length
    # Whole segments of random features plus the R look-ahead frames: 1 chunk, then 3, then 6.
    return [dict(model=model, features=torch.randn(n * seg + R, 80, dtype=torch.float64)) for n in (1, 3, 6)]


def _lookahead_without_copies(num_layers: int = 6, segment_length: int = 8, right_context_length: int = 2) -> int:
    T = 12 * segment_length
    mask = ablations.next_segment_mask(training_mask(T, segment_length, right_context_length),
                                       segment_length, right_context_length)
    reach = ablations.reachability(mask, num_layers, segment_length, right_context_length)
    return ablations.look_ahead(reach[-1], segment_length)


EXERCISES = {
    "05.hard_copies": Exercise("right-context blocks (N*R, D) of frames (T+R, D), as Emformer lays them out",
                               _right_context_blocks, _hard_copy_cases),
    "05.streaming_loop": Exercise("encode features chunk by chunk with transcribe_streaming; equals transcribe",
                                  _full_context, _streaming_cases),
    "05.lookahead_without_copies": Exercise("look-ahead (encoder frames) of 6 layers, S=8, R=2, segments "
                                            "attending to the next segment's frames", _lookahead_without_copies),
}
