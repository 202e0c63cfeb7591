"""Fast RNN-T beam search: the algorithm of :mod:`~emformer_edu.rnnt.beam_search` over packed hypotheses.

Shapes: T frames, V vocabulary (incl. blank), D model dim; N hypotheses scored together and
K the numbers of one hypothesis' predictor output and state, flattened (e.g. D + 2 * layers * H).

:class:`RNNTBeamSearch` subclasses :class:`~emformer_edu.rnnt.beam_search.RNNTBeamSearchReference`
and keeps its algorithm (``_search_frame``, ``_add_blank``, ``_extend``, ``_prune``); it replaces
only the storage. torchaudio keeps one tensor per hypothesis and state component, so every
``predict`` cats them into a batch and every result is sliced back out, one small op per
hypothesis and tensor. Here the predictor output and state of a hypothesis are one row of an
(N, K) tensor: a batch is one ``stack``, a result one ``cat``, and public ``Hypothesis``
tensors are made once per ``search`` call. Packing only copies numbers, so every call to the
model gets bit-identical inputs and the results equal the readable search and torchaudio's.

Speed (``benchmarks/bench_beam_search.py``): bit-identical results mean torchaudio's exact
``join`` and ``predict`` calls, and those take about 80% of torchaudio's search time, so that
share is a floor for any decoder. The rest, bookkeeping, is where both of ours beat torchaudio
(tuple keys instead of ``str(tokens)``, one tensor op per step for all blank scores); packing
then changes little, as ``bench_beam_search.py`` prints.
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch

from .beam_search import Hypothesis, RNNTBeamSearchReference, _as_hypothesis, _default_hypo_sort_key
from .common import PredictorState, _predict_blank


class _Hyp(NamedTuple):
    """A hypothesis inside the fast search (same field names as :class:`Hypothesis` where shared)."""

    tokens: Tuple[int, ...]  # a tuple: it is the merge key, and appending makes a new one
    score: float
    timesteps: Tuple[int, ...]
    memory: torch.Tensor  # (K,) predictor output and state, one row of a packed tensor


class _PredictorPacking:
    """Packs predictor output and state of N hypotheses into one (N, K) tensor.

    Row n is ``[predictor_out[n].flatten(), state[0][0][n].flatten(), ...]``.
    """

    def __init__(self, out_shape: torch.Size, state_shapes: List[List[torch.Size]]):
        self.out_shape = out_shape  # one hypothesis' predictor_out, (1, D)
        self.state_shapes = state_shapes  # one hypothesis' state tensors without batch dim, e.g. [[(H,), (H,)], ...]
        self.sizes = [math.prod(out_shape)] + [math.prod(s) for layer in state_shapes for s in layer]

    @classmethod
    def from_batch(cls, predictor_out: torch.Tensor, state: PredictorState) -> "_PredictorPacking":
        """From a ``predict`` result: predictor_out (N, 1, D), state tensors (N, ...)."""
        return cls(predictor_out.shape[1:], [[s.shape[1:] for s in layer] for layer in state])

    def pack(self, predictor_out: torch.Tensor, state: PredictorState) -> torch.Tensor:
        """predictor_out (N, 1, D) and state [[(N, ...), ...], ...] -> (N, K)."""
        n = predictor_out.shape[0]
        parts = [predictor_out.reshape(n, -1)] + [s.reshape(n, -1) for layer in state for s in layer]
        if any(p.dtype != parts[0].dtype for p in parts):
            raise TypeError("beam search packs predictor output and state together; they must share a dtype")
        return torch.cat(parts, dim=1)

    def unpack_out(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, K) -> predictor_out (N, 1, D)."""
        return packed[:, : self.sizes[0]].reshape(-1, *self.out_shape).contiguous()

    def unpack_state(self, packed: torch.Tensor) -> PredictorState:
        """(N, K) -> predictor state [[(N, ...), ...], ...] (contiguous)."""
        pieces = iter(packed.split(self.sizes, dim=1)[1:])
        return [[next(pieces).reshape(-1, *shape).contiguous() for shape in layer] for layer in self.state_shapes]

    def unpack_rows(self, packed: torch.Tensor) -> Tuple[List[torch.Tensor], List[PredictorState]]:
        """(N, K) -> per hypothesis: predictor_out (1, D) and state of (1, ...) tensors, as torchaudio slices them."""
        pieces = packed.split(self.sizes, dim=1)
        outs = pieces[0].reshape(-1, *self.out_shape).unbind(0)  # N x (1, D)
        it = iter(pieces[1:])
        states = [[next(it).reshape(-1, *shape).split(1) for shape in layer] for layer in self.state_shapes]
        return list(outs), [[[c[n] for c in layer] for layer in states] for n in range(packed.shape[0])]


class RNNTBeamSearch(RNNTBeamSearchReference):
    """Beam search for RNN-T, same interface and same numbers as torchaudio's (and as
    :class:`~emformer_edu.rnnt.beam_search.RNNTBeamSearchReference`, whose arguments it takes)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._packing: Optional[_PredictorPacking] = None  # layout of the search in progress
        # (packing, returned hypotheses, their internal twins) of the last search call
        self._last_result: Optional[Tuple[_PredictorPacking, List[Hypothesis], List[_Hyp]]] = None

    # ---- storage: packed rows instead of per-hypothesis tensors ----------- #
    def _start(self, hypothesis: Optional[Sequence], device: torch.device) -> List[_Hyp]:
        if hypothesis is None:
            predictor_out, state = _predict_blank(self.model, 1, self.blank, device)
            self._packing = _PredictorPacking.from_batch(predictor_out, state)
            return [_Hyp((self.blank,), 0.0, (-1,), self._packing.pack(predictor_out, state)[0])]
        last = self._last_result
        if (
            last is not None
            and len(last[1]) == len(hypothesis)
            and all(a is b for a, b in zip(hypothesis, last[1]))
            and last[2][0].memory.device == device
        ):
            # streaming: exactly what we returned last time, so continue from its packed rows
            # (the returned tensors are copies of those rows, so they hold the same values)
            self._packing = last[0]
            return list(last[2])
        hypos = [_as_hypothesis(h) for h in hypothesis]  # also torchaudio's 4-tuples
        self._packing = _PredictorPacking.from_batch(hypos[0].predictor_out.unsqueeze(0), hypos[0].state)
        rows = [self._packing.pack(h.predictor_out.unsqueeze(0), h.state)[0].to(device) for h in hypos]
        return [_Hyp(tuple(h.tokens), h.score, tuple(h.timesteps), row) for h, row in zip(hypos, rows)]

    def _finish(self, beam: List[_Hyp], num_frames: int) -> List[Hypothesis]:
        result = self._export(beam, num_frames)
        self._last_result = (self._packing, result, beam)
        return result

    def _export(self, beam: List[_Hyp], num_frames: int) -> List[Hypothesis]:
        """Internal -> public hypotheses; their tensors are views of one (N, K) copy."""
        outs, states = self._packing.unpack_rows(torch.stack([h.memory for h in beam]))
        return [
            Hypothesis(list(h.tokens), out, state, h.score, list(h.timesteps), num_frames)
            for h, out, state in zip(beam, outs, states)
        ]

    def _log_probs(self, enc_t: torch.Tensor, a: List[_Hyp]) -> torch.Tensor:
        return self._join(enc_t, self._packing.unpack_out(torch.stack([h.memory for h in a])))

    def _predict(self, parents: List[_Hyp], tokens: List[int], scores: List[float], t: int) -> List[_Hyp]:
        device = parents[0].memory.device
        state = self._packing.unpack_state(torch.stack([p.memory for p in parents]))
        token_ids = torch.tensor(tokens, device=device).unsqueeze(1)  # (N, 1)
        predictor_out, _, state = self.model.predict(token_ids, self._ones(len(tokens), device), state)
        rows = self._packing.pack(predictor_out, state).unbind(0)
        return [
            _Hyp(p.tokens + (token,), score, p.timesteps + (t,), row)
            for p, token, score, row in zip(parents, tokens, scores, rows)
        ]

    def _sort_keys(self, b: List[_Hyp]) -> List[float]:
        if self.hypo_sort_key is _default_hypo_sort_key:  # it reads only tokens and score: no export needed
            return [_default_hypo_sort_key(h) for h in b]
        return [self.hypo_sort_key(h) for h in self._export(b, 0)]
