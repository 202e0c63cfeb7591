"""Beam search for RNN-T, torchaudio-compatible.

Notation used in the shapes below:
    B batch, T frames, U target length, V vocabulary (incl. blank), D model dim.

Everything here talks to the model only through torchaudio's RNN-T interface::

    enc, enc_len         = model.transcribe(x, x_len)                  # (B, T, D)
    enc, enc_len, tstate = model.transcribe_streaming(x, x_len, tstate)
    g, g_len, pstate     = model.predict(tokens, tok_len, pstate)      # (B, U, D)
    logits, _, _         = model.join(enc, enc_len, g, g_len)          # (B, T, U, V)

so it works unchanged with ``torchaudio.models.emformer_rnnt_model`` and with
``emformer_edu.emformer_rnnt_model``. The transcriber's streaming state is passed
back untouched; the predictor state (``List[List[Tensor]]``, batch first, like
torchaudio's LSTM ``[[h, c], ...]``) is gathered/split along dim 0 by beam search.

Emission times: every decoder records, for each emitted token, the *encoder
frame* ``t`` at which it was emitted (its "timestep"). :func:`token_timestamps`
turns that into input-frame indices and seconds.
"""

import math
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch

from .common import PredictorState, _check_blank, _check_positive_int, _check_single_utterance, _predict_blank


class Hypothesis(NamedTuple):
    """One beam-search hypothesis; fields 0-3 are torchaudio's Hypothesis tuple.

    tokens: token ids, starting with the blank that seeded the predictor.
    predictor_out: (1, D) predictor output for the last token.
    state: predictor state after the last token (each tensor has batch dim 1).
    score: log-probability of the hypothesis (a float32 value).
    timesteps: encoder frame at which each token was emitted (same length as
        tokens; -1 for the seeding blank or history of unknown time).
    num_frames: encoder frames consumed so far (offset for the next ``infer``).
    """

    tokens: List[int]
    predictor_out: torch.Tensor
    state: PredictorState
    score: float
    timesteps: Optional[List[int]] = None
    num_frames: int = 0


def _default_hypo_sort_key(hypo) -> float:
    """torchaudio's ranking: score normalised by (number of tokens + 1)."""
    return hypo[3] / (len(hypo[0]) + 1)


class _Hyp:
    """Internal hypothesis. ``memory`` is one row of a packed predictor tensor
    (see :class:`_PredictorPacking`), so hypotheses never copy or slice state
    tensors one by one; tokens/timesteps are tuples so tokens is the merge key."""

    __slots__ = ("tokens", "score", "timesteps", "memory")

    def __init__(self, tokens: Tuple[int, ...], score: float, timesteps: Tuple[int, ...], memory: torch.Tensor):
        self.tokens = tokens
        self.score = score
        self.timesteps = timesteps
        self.memory = memory


class _PredictorPacking:
    """Packs predictor output and state of N hypotheses into one (N, K) tensor.

    Row n is ``[predictor_out[n].flatten(), state[0][0][n].flatten(), ...]``.
    Gathering the beam is then one ``stack``/``index_select`` instead of one
    slice per hypothesis and state tensor. Packing is a pure copy: the numbers
    fed back to the model are bit-identical to torchaudio's per-hypothesis tensors.
    """

    def __init__(self, out_shape: torch.Size, state_shapes: List[List[torch.Size]]):
        self.out_shape = out_shape  # shape of one hypothesis' predictor_out, (1, D)
        self.state_shapes = state_shapes  # per-hypothesis shapes, e.g. [[(H,), (H,)], ...]
        self.sizes = [math.prod(out_shape)] + [math.prod(s) for layer in state_shapes for s in layer]

    @classmethod
    def from_batch(cls, pred_out: torch.Tensor, state: PredictorState) -> "_PredictorPacking":
        return cls(pred_out.shape[1:], [[s.shape[1:] for s in layer] for layer in state])

    def pack(self, pred_out: torch.Tensor, state: PredictorState) -> torch.Tensor:
        n = pred_out.shape[0]
        parts = [pred_out.reshape(n, -1)] + [s.reshape(n, -1) for layer in state for s in layer]
        if any(p.dtype != parts[0].dtype for p in parts):
            raise TypeError("beam search packs predictor output and state together; they must share a dtype")
        return torch.cat(parts, dim=1)

    def unpack_out(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, K) -> predictor_out (N, *out_shape)."""
        return packed[:, : self.sizes[0]].reshape(-1, *self.out_shape).contiguous()

    def unpack_state(self, packed: torch.Tensor) -> PredictorState:
        """(N, K) -> predictor state [[(N, *shape), ...], ...] (contiguous)."""
        pieces = iter(packed.split(self.sizes, dim=1)[1:])
        return [[next(pieces).reshape(-1, *shape).contiguous() for shape in layer] for layer in self.state_shapes]


class RNNTBeamSearch(torch.nn.Module):
    """Beam search for RNN-T, same interface and same numbers as torchaudio's.

    The algorithm (per encoder frame t, as in torchaudio):

    * ``A``: hypotheses that may still emit at frame t (starts as the beam).
    * ``B``: hypotheses that have finished frame t with a blank.
    * Repeat while A is not empty: score all V outputs of A with one ``join``;
      move every hypothesis in A to B with the blank's log-prob (merging with an
      identical token sequence already in B by ``logaddexp``); then extend A by
      the ``beam_width`` best (hypothesis, non-blank token) pairs that beat the
      ``beam_width``-th best score in B, with one batched ``predict`` call.
    * The new beam is the ``beam_width`` best of B by ``hypo_sort_key``.

    Args:
        model: RNN-T with torchaudio's interface.
        blank: blank index. torchaudio always reads the *last* joiner output as
            blank, so results equal torchaudio's when ``blank == V - 1``; other
            blank indices are handled properly here.
        temperature: joiner logits are divided by it before log_softmax.
        hypo_sort_key: ranks hypotheses for the final pruning of each frame;
            default ``score / (len(tokens) + 1)``.
        step_max_tokens: max tokens emitted per encoder frame.
    """

    def __init__(
        self,
        model,
        blank: int,
        temperature: float = 1.0,
        hypo_sort_key: Optional[Callable[[Hypothesis], float]] = None,
        step_max_tokens: int = 100,
    ) -> None:
        super().__init__()
        _check_positive_int("blank", blank, minimum=0)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        _check_positive_int("step_max_tokens", step_max_tokens, minimum=0)
        self.model = model
        self.blank = blank
        self.temperature = temperature
        self.hypo_sort_key = _default_hypo_sort_key if hypo_sort_key is None else hypo_sort_key
        self.step_max_tokens = step_max_tokens
        self._ones_cache: Dict[torch.device, torch.Tensor] = {}
        # (packing, returned hypotheses, their internal twins) of the last search call
        self._last_result: Optional[Tuple[_PredictorPacking, List[Hypothesis], List[_Hyp]]] = None

    # ---- public API ------------------------------------------------------- #
    def forward(self, input: torch.Tensor, length: torch.Tensor, beam_width: int) -> List[Hypothesis]:
        """Full-context beam search of one utterance.

        Args:
            input: (T + right context, F) or (1, T + right context, F) features.
            length: () or (1,) as for ``model.transcribe``. Like torchaudio, the
                search runs over every encoder frame returned.
            beam_width: number of hypotheses kept (>= 1).

        Returns:
            Up to ``beam_width`` hypotheses, best first.
        """
        _check_positive_int("beam_width", beam_width)
        input, length = _check_single_utterance(input, length)
        enc_out, _ = self.model.transcribe(input, length)
        return self.search(enc_out, beam_width)

    def infer(
        self,
        input: torch.Tensor,
        length: torch.Tensor,
        beam_width: int,
        state=None,
        hypothesis: Optional[List[Hypothesis]] = None,
    ):
        """Streaming beam search of one chunk.

        Args:
            input: (segment + right context, F) or (1, segment + right context, F).
            length: () or (1,).
            beam_width: number of hypotheses kept (>= 1).
            state: transcriber state of the previous chunk (opaque) or None.
            hypothesis: hypotheses returned for the previous chunk or None
                (torchaudio 4-tuples are accepted too).

        Returns:
            (hypotheses, state): best-first hypotheses and the new transcriber state.
        """
        _check_positive_int("beam_width", beam_width)
        input, length = _check_single_utterance(input, length)
        enc_out, _, state = self.model.transcribe_streaming(input, length, state)
        return self.search(enc_out, beam_width, hypothesis), state

    @torch.no_grad()
    def search(
        self, enc_out: torch.Tensor, beam_width: int, hypothesis: Optional[List[Hypothesis]] = None
    ) -> List[Hypothesis]:
        """Beam search over encoder output ``enc_out`` (1, T, D), continuing from
        ``hypothesis`` if given (frame-synchronous: call it chunk after chunk)."""
        _check_positive_int("beam_width", beam_width)
        if enc_out.dim() != 3 or enc_out.shape[0] != 1:
            raise ValueError(f"enc_out must be of shape (1, T, D), got {tuple(enc_out.shape)}")
        device = enc_out.device
        if hypothesis is None:
            packing, beam = self._initial_beam(device)
            offset = 0
        else:
            if len(hypothesis) == 0:
                raise ValueError("hypothesis must be a non-empty list (or None)")
            packing, beam = self._import(hypothesis, device)
            offset = hypothesis[0][5] if len(hypothesis[0]) > 5 else 0
        for t in range(enc_out.shape[1]):
            beam = self._search_frame(enc_out[:, t : t + 1], beam, beam_width, offset + t, packing)
        num_frames = offset + enc_out.shape[1]
        result = self._export_beam(beam, packing, num_frames)
        self._last_result = (packing, result, beam)
        return result

    # ---- conversion between public and internal hypotheses ---------------- #
    def _initial_beam(self, device: torch.device) -> Tuple[_PredictorPacking, List[_Hyp]]:
        """The beam before any frame: blank fed to the predictor, score 0."""
        pred_out, pred_state = _predict_blank(self.model, 1, self.blank, device)
        packing = _PredictorPacking.from_batch(pred_out, pred_state)
        memory = packing.pack(pred_out, pred_state)[0]
        return packing, [_Hyp((self.blank,), 0.0, (-1,), memory)]

    def _import(self, hypos: List[Hypothesis], device: torch.device) -> Tuple[_PredictorPacking, List[_Hyp]]:
        """Public (or torchaudio) hypotheses -> internal ones, packing predictor tensors."""
        last = self._last_result
        if last is not None and len(last[1]) == len(hypos) and all(a is b for a, b in zip(hypos, last[1])):
            # streaming fast path: exactly what we returned last time, so reuse it un-repacked
            # (the returned tensors are copies of the packed rows, so they hold the same values)
            if last[2][0].memory.device == device:
                return last[0], list(last[2])
        first = hypos[0]
        packing = _PredictorPacking(first[1].shape, [[s.shape[1:] for s in layer] for layer in first[2]])
        beam = []
        for h in hypos:
            timesteps = h[4] if len(h) > 4 and h[4] is not None else [-1] * len(h[0])
            memory = packing.pack(h[1].unsqueeze(0), h[2])[0].to(device)
            beam.append(_Hyp(tuple(h[0]), float(h[3]), tuple(timesteps), memory))
        return packing, beam

    def _export(self, h: _Hyp, packing: _PredictorPacking, num_frames: int) -> Hypothesis:
        return self._export_beam([h], packing, num_frames)[0]

    def _export_beam(self, beam: List[_Hyp], packing: _PredictorPacking, num_frames: int) -> List[Hypothesis]:
        """Internal -> public hypotheses; tensors are (1, ...) views of one stacked copy (read-only)."""
        memory = torch.stack([h.memory for h in beam])  # (N, K)
        pieces = memory.split(packing.sizes, dim=1)
        outs = pieces[0].reshape(-1, *packing.out_shape).split(1)  # N x (1, 1, D)
        it = iter(pieces[1:])
        # state[layer][k] as N tensors of shape (1, *shape), as torchaudio slices them
        states = [[next(it).reshape(-1, *shape).split(1) for shape in layer] for layer in packing.state_shapes]
        return [
            Hypothesis(
                list(h.tokens),
                outs[n][0],  # (1, D)
                [[component[n] for component in layer] for layer in states],
                h.score,
                list(h.timesteps),
                num_frames,
            )
            for n, h in enumerate(beam)
        ]

    # ---- one encoder frame ------------------------------------------------ #
    def _search_frame(
        self, enc_t: torch.Tensor, beam: List[_Hyp], beam_width: int, t: int, packing: _PredictorPacking
    ) -> List[_Hyp]:
        """Advance the beam over one encoder frame ``enc_t`` (1, 1, D)."""
        a_hyps = beam
        a_memory = torch.stack([h.memory for h in beam])  # (N, K)
        b_hyps: List[_Hyp] = []  # ascending score
        b_by_tokens: Dict[Tuple[int, ...], _Hyp] = {}
        emitted = 0
        while a_hyps:
            log_probs = self._log_probs(enc_t, a_memory, packing)  # (N, V)
            b_hyps = self._end_frame_with_blank(a_hyps, log_probs, b_hyps, b_by_tokens)
            if emitted == self.step_max_tokens:
                break
            a_hyps, a_memory = self._emit_tokens(a_hyps, a_memory, log_probs, b_hyps, beam_width, t, packing)
            if a_hyps:
                emitted += 1
        return self._prune(b_hyps, beam_width, packing)

    def _log_probs(self, enc_t: torch.Tensor, memory: torch.Tensor, packing: _PredictorPacking) -> torch.Tensor:
        """Joiner log-probabilities (N, V) of every hypothesis at this frame."""
        n = memory.shape[0]
        pred_out = packing.unpack_out(memory)  # (N, 1, D)
        logits, _, _ = self.model.join(enc_t, self._ones(1, enc_t.device), pred_out, self._ones(n, enc_t.device))
        if self.temperature != 1.0:  # x / 1.0 == x exactly, so skipping it changes no bit
            logits = logits / self.temperature
        log_probs = torch.nn.functional.log_softmax(logits, dim=3)[:, 0, 0].cpu()
        _check_blank(self.blank, log_probs.shape[1])
        return log_probs

    def _ones(self, n: int, device: torch.device) -> torch.Tensor:
        """(n,) int64 ones, the per-hypothesis lengths (= 1 frame / 1 token); cached."""
        ones = self._ones_cache.get(device)
        if ones is None or ones.shape[0] < n:
            ones = torch.ones(max(n, 16), dtype=torch.long, device=device)
            self._ones_cache[device] = ones
        return ones[:n]

    def _end_frame_with_blank(
        self,
        a_hyps: List[_Hyp],
        log_probs: torch.Tensor,
        b_hyps: List[_Hyp],
        b_by_tokens: Dict[Tuple[int, ...], _Hyp],
    ) -> List[_Hyp]:
        """Add each A hypothesis + blank to B, merging equal token sequences. Returns B sorted ascending."""
        # score + log P(blank); a float32 add, same rounding as torchaudio's scalar adds
        a_scores = torch.tensor([h.score for h in a_hyps], dtype=log_probs.dtype)
        blank_scores = (a_scores + log_probs[:, self.blank]).tolist()
        for h, score in zip(a_hyps, blank_scores):
            old = b_by_tokens.get(h.tokens)
            timesteps = h.timesteps
            if old is not None:  # same tokens reached twice: add the probabilities
                b_hyps.remove(old)  # identity comparison (no __eq__)
                if old.score > score:  # emission frames follow the likelier of the two paths
                    timesteps = old.timesteps
                score = float(torch.tensor(old.score).logaddexp(torch.tensor(score, dtype=log_probs.dtype)))
            new = _Hyp(h.tokens, score, timesteps, h.memory)
            b_hyps.append(new)
            b_by_tokens[h.tokens] = new
        order = torch.tensor([h.score for h in b_hyps]).sort()[1].tolist()
        return [b_hyps[i] for i in order]

    def _emit_tokens(
        self,
        a_hyps: List[_Hyp],
        a_memory: torch.Tensor,
        log_probs: torch.Tensor,
        b_hyps: List[_Hyp],
        beam_width: int,
        t: int,
        packing: _PredictorPacking,
    ) -> Tuple[List[_Hyp], torch.Tensor]:
        """New A: the best (hypothesis, non-blank token) extensions that can still enter the beam."""
        V = log_probs.shape[1]
        blank = self.blank
        if blank == V - 1:
            nonblank = log_probs[:, :-1]
        else:
            nonblank = torch.cat([log_probs[:, :blank], log_probs[:, blank + 1 :]], dim=1)
        scores = torch.tensor([h.score for h in a_hyps]).unsqueeze(1) + nonblank  # (N, V-1)
        k = min(beam_width, scores.numel())
        best_scores, best_flat = scores.reshape(-1).topk(k)
        best_scores, best_flat = best_scores.tolist(), best_flat.tolist()
        # the beam_width-th best finished hypothesis is the bar to beat
        bar = b_hyps[-beam_width].score if len(b_hyps) >= beam_width else -float("inf")
        keep = [i for i in range(k) if best_scores[i] > bar]
        if not keep:
            return [], a_memory[:0]

        parents, tokens, scores_kept = [], [], []
        for i in keep:
            parent, column = divmod(best_flat[i], V - 1)  # flat index over (N, V-1)
            parents.append(parent)
            # column j of `nonblank` is token j, or j + 1 past a blank that is not last
            tokens.append(column + 1 if blank != V - 1 and column >= blank else column)
            scores_kept.append(best_scores[i])

        device = a_memory.device
        state = packing.unpack_state(a_memory.index_select(0, torch.tensor(parents, device=device)))
        pred_out, _, pred_state = self.model.predict(
            torch.tensor(tokens, device=device).unsqueeze(1), self._ones(len(tokens), device), state
        )
        memory = packing.pack(pred_out, pred_state)  # (n, K)
        new_hyps = [
            _Hyp(a_hyps[p].tokens + (tok,), score, a_hyps[p].timesteps + (t,), row)
            for p, tok, score, row in zip(parents, tokens, scores_kept, memory.unbind(0))
        ]
        return new_hyps, memory

    def _prune(self, b_hyps: List[_Hyp], beam_width: int, packing: _PredictorPacking) -> List[_Hyp]:
        """Keep the ``beam_width`` best of B by ``hypo_sort_key`` (best first)."""
        if self.hypo_sort_key is _default_hypo_sort_key:
            keys = [h.score / (len(h.tokens) + 1) for h in b_hyps]
        else:
            keys = [self.hypo_sort_key(self._export(h, packing, 0)) for h in b_hyps]
        _, idx = torch.tensor(keys).topk(min(beam_width, len(keys)))
        return [b_hyps[i] for i in idx.tolist()]
