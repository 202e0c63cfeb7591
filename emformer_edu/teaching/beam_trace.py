"""Record what :class:`~emformer_edu.rnnt.beam_search.RNNTBeamSearch` does frame by frame, for notebook 08.

The library's search keeps only the final beam. :func:`trace_beam_search` runs the *same* search
(``searcher.search``, unchanged) and listens in on two of its per-frame steps:

* ``_add_blank(a, log_probs, b)``: called once per pass over the set A at a frame; we count the
  passes and the size of A (how many hypotheses could still emit a token there);
* ``_prune(b, beam_width)``: called once at the end of each frame with the whole set B (every
  distinct token sequence that ended the frame with a blank, merged); we keep B and what survived.

The methods are wrapped on the instance for the duration of the call and restored afterwards
(``try/finally``), so the searcher, its results and torchaudio parity are untouched: the returned
hypotheses are exactly ``searcher.search(enc_out, beam_width, hypothesis)``.

Notation: T encoder frames, D model dim, V vocabulary (incl. blank).
"""
from typing import List, NamedTuple, Optional, Sequence

import torch

from ..rnnt.beam_search import Hypothesis, RNNTBeamSearch, _as_hypothesis

__all__ = ["FrameTrace", "BeamTrace", "trace_beam_search", "trace_beam_search_features"]


class FrameTrace(NamedTuple):
    """One encoder frame of the search.

    frame: global encoder frame index t.
    candidates: the set B at the end of frame t, before pruning (ascending score): every distinct
        token sequence that ended frame t with a blank, its alignments merged.
    kept: the beam after pruning (best first by ``hypo_sort_key``): at most ``beam_width`` of B.
    a_sizes: size of A on each pass of the frame's while-loop; ``len(a_sizes) - 1`` passes emitted
        a token (the last pass only adds blanks, or stopped at ``step_max_tokens``).
    """

    frame: int
    candidates: List[Hypothesis]
    kept: List[Hypothesis]
    a_sizes: List[int]

    @property
    def merges(self) -> int:
        """Hypotheses that reached B with token sequences B already held (their probabilities were log-added)."""
        return sum(self.a_sizes) - len(self.candidates)

    @property
    def tokens_emitted(self) -> int:
        """Passes of the while-loop at this frame that extended A with a token (<= ``step_max_tokens``)."""
        return max(len(self.a_sizes) - 1, 0)


class BeamTrace(NamedTuple):
    """The whole search: one :class:`FrameTrace` per encoder frame and the final hypotheses (best first)."""

    frames: List[FrameTrace]
    hypotheses: List[Hypothesis]
    beam_width: int

    def best_path(self) -> List[Optional[Hypothesis]]:
        """For each frame, the kept hypothesis that the final best one grew from (``None`` if not in the beam).

        The final best hypothesis records the frame of each token (``timesteps``, the likelier alignment
        where two were merged); at frame t its ancestor is the hypothesis holding the tokens emitted up to t.
        """
        best = self.hypotheses[0]
        path = []
        for f in self.frames:
            n = sum(1 for s in best.timesteps if s <= f.frame)  # the seeding blank has timestep -1
            prefix = list(best.tokens[:n])
            path.append(next((h for h in f.kept if list(h.tokens) == prefix), None))
        return path


@torch.no_grad()
def trace_beam_search(searcher: RNNTBeamSearch, enc_out: torch.Tensor, beam_width: int,
                      hypothesis: Optional[Sequence] = None) -> BeamTrace:
    """Run ``searcher.search(enc_out, beam_width, hypothesis)`` and record every frame.

    Args:
        searcher: the library's :class:`RNNTBeamSearch` (its ``step_max_tokens`` and ``hypo_sort_key`` apply).
        enc_out: (1, T, D) encoder output.
        beam_width: beam size.
        hypothesis: hypotheses to continue from (as for ``search``), or ``None``.

    Returns:
        :class:`BeamTrace` whose ``hypotheses`` are exactly what ``search`` returns.
    """
    frames: List[FrameTrace] = []
    a_sizes: List[int] = []
    start = 0 if hypothesis is None else _as_hypothesis(hypothesis[0]).num_frames  # global index of frame 0
    original_add_blank, original_prune = searcher._add_blank, searcher._prune

    def add_blank(a, log_probs, b):
        a_sizes.append(len(a))
        return original_add_blank(a, log_probs, b)

    def prune(b, width):
        kept = original_prune(b, width)
        frames.append(FrameTrace(start + len(frames), list(b), list(kept), list(a_sizes)))
        a_sizes.clear()
        return kept

    saved = {name: vars(searcher)[name] for name in ("_add_blank", "_prune") if name in vars(searcher)}
    searcher._add_blank, searcher._prune = add_blank, prune  # instance attributes shadow the class's methods
    try:
        hypotheses = searcher.search(enc_out, beam_width, hypothesis)
    finally:
        del searcher._add_blank, searcher._prune  # the class's methods again
        for name, value in saved.items():  # or whatever the instance held before
            setattr(searcher, name, value)
    return BeamTrace(frames, hypotheses, beam_width)


@torch.no_grad()
def trace_beam_search_features(searcher: RNNTBeamSearch, input: torch.Tensor, length: torch.Tensor,
                               beam_width: int) -> BeamTrace:
    """As ``searcher(input, length, beam_width)`` (full context), recording every frame.

    ``input``: (T + R, F) or (1, T + R, F) features; ``length``: () or (1,)."""
    input, length = searcher._check_input(input, length, beam_width)
    enc_out, _ = searcher.model.transcribe(input, length)
    return trace_beam_search(searcher, enc_out, beam_width)
