"""Beam search for RNN-T, written to be read: torchaudio's algorithm over named hypotheses.

Shapes: B batch, T frames, U target length, V vocabulary (incl. blank), D model dim;
N is the number of hypotheses scored together (at most ``beam_width``).

The search talks to the model only through torchaudio's RNN-T interface, so it runs on
``torchaudio.models.emformer_rnnt_model`` as well as on ``emformer_edu.emformer_rnnt_model``::

    enc, enc_len         = model.transcribe(x, x_len)                  # (1, T, D)
    enc, enc_len, tstate = model.transcribe_streaming(x, x_len, tstate)
    g, g_len, pstate     = model.predict(tokens, ones, pstate)         # (N, 1, D)
    logits, _, _         = model.join(enc_t, one, g, ones)             # (N, 1, 1, V)

The algorithm is torchaudio's (a frame-synchronous form of Graves, 2012). A hypothesis is a
token sequence with the log-probability of the alignments found for it. At encoder frame t::

    A = beam                      # may still emit a token at frame t
    B = {}                        # have finished frame t with a blank, keyed by tokens
    while A:
        log P(k | h, t) for every h in A and all V outputs k       (one ``join``)
        move each h in A to B, adding log P(blank); if B already holds the same tokens
            (another alignment of them), add the probabilities (logaddexp) and keep the
            emission frames of the likelier alignment
        after step_max_tokens emissions in this frame: stop
        A = the beam_width best extensions h + k (k != blank) that score above the
            beam_width-th best score in B                          (one ``predict``)
    beam = the beam_width best of B by hypo_sort_key (default: score / (len(tokens) + 1))

NaN or inf in the features, the encoder output or the joiner's output raises a ``ValueError``
that says where: NaN scores would otherwise rank arbitrarily and give a confident wrong answer.

There is one implementation, and it keeps each hypothesis' predictor output and state as its
own tensors, as torchaudio does. A variant that packed all hypotheses' states into one tensor
was measured (``benchmarks/bench_beam_search.py``) and removed: it was no faster. Results
equal to torchaudio's bit for bit need torchaudio's exact ``join`` and ``predict`` calls, and
those take about 85% of the search time, so only the remaining bookkeeping can be sped up,
and packing it did not pay.
"""
import math
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ..checks import check_finite
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


def _default_hypo_sort_key(hypo: Hypothesis) -> float:
    """torchaudio's ranking: score normalised by (number of tokens + 1)."""
    return hypo.score / (len(hypo.tokens) + 1)


def _as_hypothesis(hypo: Sequence) -> Hypothesis:
    """A Hypothesis from ours or from torchaudio's (tokens, predictor_out, state, score) tuple."""
    hypo = Hypothesis(*hypo)
    timesteps = [-1] * len(hypo.tokens) if hypo.timesteps is None else list(hypo.timesteps)  # -1: frame unknown
    return hypo._replace(tokens=list(hypo.tokens), score=float(hypo.score), timesteps=timesteps)


def _check_search_input(enc_out: torch.Tensor, beam_width: int, hypothesis: Optional[Sequence]) -> None:
    _check_positive_int("beam_width", beam_width)
    if enc_out.dim() != 3 or enc_out.shape[0] != 1:
        raise ValueError(f"enc_out must be of shape (1, T, D), got {tuple(enc_out.shape)}")
    check_finite(enc_out, "enc_out")  # NaN scores would rank arbitrarily: a confident wrong answer
    if hypothesis is not None and len(hypothesis) == 0:
        raise ValueError("hypothesis must be a non-empty list (or None)")


class RNNTBeamSearch(torch.nn.Module):
    """Beam search for RNN-T with torchaudio's interface and torchaudio's numbers.

    Args:
        model: RNN-T with torchaudio's interface.
        blank: blank index. torchaudio always reads the *last* joiner output as
            blank, so results equal torchaudio's when ``blank == V - 1``; other
            blank indices are handled properly here.
        temperature: joiner logits are divided by it before log_softmax.
        hypo_sort_key: ranks the hypotheses of B when the beam is pruned after
            each frame; default ``score / (len(tokens) + 1)``.
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

    # ---- public API: torchaudio's ---------------------------------------- #
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
        input, length = self._check_input(input, length, beam_width)
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
        input, length = self._check_input(input, length, beam_width)
        enc_out, _, state = self.model.transcribe_streaming(input, length, state)
        return self.search(enc_out, beam_width, hypothesis), state

    @torch.no_grad()
    def search(
        self, enc_out: torch.Tensor, beam_width: int, hypothesis: Optional[List[Hypothesis]] = None
    ) -> List[Hypothesis]:
        """Beam search over encoder output ``enc_out`` (1, T, D), continuing from
        ``hypothesis`` if given (frame-synchronous: call it chunk after chunk).

        Raises ``ValueError`` if ``enc_out`` or the joiner's output holds NaN or inf."""
        _check_search_input(enc_out, beam_width, hypothesis)
        if hypothesis is None:  # start: the blank fed to the predictor
            predictor_out, state = _predict_blank(self.model, 1, self.blank, enc_out.device)
            beam = [Hypothesis([self.blank], predictor_out[0], state, 0.0, [-1], 0)]
        else:  # continue from the previous chunk's hypotheses (ours or torchaudio's)
            beam = [_as_hypothesis(h) for h in hypothesis]
        offset = beam[0].num_frames  # global index of enc_out's first frame
        for t in range(enc_out.shape[1]):
            beam = self._search_frame(enc_out[:, t : t + 1], beam, beam_width, offset + t)
        return [h._replace(num_frames=offset + enc_out.shape[1]) for h in beam]

    def _check_input(self, input: torch.Tensor, length: torch.Tensor, beam_width: int):
        _check_positive_int("beam_width", beam_width)
        input, length = _check_single_utterance(input, length)
        check_finite(input, "input")  # before the encoder, so the message points at the features
        return input, length

    # ---- the algorithm ---------------------------------------------------- #
    def _search_frame(self, enc_t: torch.Tensor, beam: List[Hypothesis], beam_width: int, t: int) -> List[Hypothesis]:
        """Advance the beam over one encoder frame ``enc_t`` (1, 1, D); ``t`` is its global index."""
        a = beam  # may still emit at frame t
        b: Dict[Tuple[int, ...], Hypothesis] = {}  # ended frame t with a blank: tokens -> hypothesis, ascending score
        emitted = 0
        while a:
            log_probs = self._join(enc_t, torch.stack([h.predictor_out for h in a]))  # (N, V)
            b = self._add_blank(a, log_probs, b)
            if emitted == self.step_max_tokens:
                break
            a = self._extend(a, log_probs, b, beam_width, t)
            if a:
                emitted += 1
        return self._prune(list(b.values()), beam_width)

    def _add_blank(self, a: List[Hypothesis], log_probs: torch.Tensor, b: Dict) -> Dict:
        """Move every hypothesis of A into B with log P(blank) added; equal tokens merge."""
        # float32 adds, with the rounding of torchaudio's `score + log_probs[i, blank]`
        blank_scores = (torch.tensor([h.score for h in a]) + log_probs[:, self.blank]).tolist()
        if not all(map(math.isfinite, blank_scores)):  # a NaN or +inf logit spoils its whole row
            check_finite(log_probs, "joiner log-probabilities")  # e.g. a model whose weights hold NaN
        for h, score in zip(a, blank_scores):
            key = tuple(h.tokens)
            timesteps = h.timesteps
            old = b.pop(key, None)
            if old is not None:  # the same tokens along another alignment: add the probabilities
                if old.score > score:  # emission frames follow the likelier alignment
                    timesteps = old.timesteps
                score = float(torch.tensor(old.score).logaddexp(torch.tensor(score)))
            b[key] = h._replace(score=score, timesteps=timesteps)
        # torch's sort, not sorted(): equal scores then stay in torchaudio's order
        items = list(b.items())
        order = torch.tensor([h.score for _, h in items]).sort().indices.tolist()
        return dict(items[i] for i in order)

    def _extend(
        self, a: List[Hypothesis], log_probs: torch.Tensor, b: Dict, beam_width: int, t: int
    ) -> List[Hypothesis]:
        """The new A: the best one-token extensions of A that can still enter the beam."""
        V = log_probs.shape[1]
        if self.blank == V - 1:  # torchaudio's layout: a view, no copy
            nonblank = log_probs[:, :-1]  # (N, V-1)
        else:
            nonblank = torch.cat([log_probs[:, : self.blank], log_probs[:, self.blank + 1 :]], dim=1)
        scores = torch.tensor([h.score for h in a]).unsqueeze(1) + nonblank
        top_scores, top_index = scores.flatten().topk(min(beam_width, scores.numel()))
        # the beam_width-th best hypothesis of B is the bar an extension must beat
        b_scores = [h.score for h in b.values()]
        bar = b_scores[-beam_width] if len(b_scores) >= beam_width else -math.inf
        parents, tokens, new_scores = [], [], []
        for score, index in zip(top_scores.tolist(), top_index.tolist()):
            if score > bar:
                parent, column = divmod(index, V - 1)
                parents.append(a[parent])
                tokens.append(column if column < self.blank else column + 1)  # step over the blank's column
                new_scores.append(score)
        return self._predict(parents, tokens, new_scores, t) if parents else []

    def _predict(
        self, parents: List[Hypothesis], tokens: List[int], scores: List[float], t: int
    ) -> List[Hypothesis]:
        """Feed ``tokens[n]`` to the predictor after ``parents[n]``, all in one batch."""
        device = parents[0].predictor_out.device
        # state[layer][k] of the batch: the parents' (1, ...) tensors stacked along dim 0
        state = [
            [torch.cat([p.state[layer][k] for p in parents]) for k in range(len(parents[0].state[layer]))]
            for layer in range(len(parents[0].state))
        ]
        token_ids = torch.tensor(tokens, device=device).unsqueeze(1)  # (N, 1)
        predictor_out, _, state = self.model.predict(token_ids, self._ones(len(tokens), device), state)
        return [
            Hypothesis(
                tokens=p.tokens + [token],
                predictor_out=predictor_out[n],  # (1, D)
                state=[[s[n : n + 1] for s in layer] for layer in state],  # row n, batch dim kept
                score=score,
                timesteps=p.timesteps + [t],
                num_frames=p.num_frames,
            )
            for n, (p, token, score) in enumerate(zip(parents, tokens, scores))
        ]

    def _prune(self, b: List[Hypothesis], beam_width: int) -> List[Hypothesis]:
        """The ``beam_width`` best of B by ``hypo_sort_key``, best first."""
        keys = torch.tensor([self.hypo_sort_key(h) for h in b])  # float32 keys and torch's topk, as torchaudio ranks
        return [b[i] for i in keys.topk(min(beam_width, len(b))).indices.tolist()]

    def _join(self, enc_t: torch.Tensor, predictor_out: torch.Tensor) -> torch.Tensor:
        """Joiner log-probabilities (N, V) of ``predictor_out`` (N, 1, D) at frame ``enc_t`` (1, 1, D)."""
        device = enc_t.device
        n = predictor_out.shape[0]
        logits, _, _ = self.model.join(enc_t, self._ones(1, device), predictor_out, self._ones(n, device))
        if self.temperature != 1.0:  # x / 1.0 == x exactly, so skipping it changes no bit
            logits = logits / self.temperature
        log_probs = torch.nn.functional.log_softmax(logits, dim=3)[:, 0, 0].cpu()
        _check_blank(self.blank, log_probs.shape[1])
        return log_probs

    def _ones(self, n: int, device: torch.device) -> torch.Tensor:
        """(n,) int64 ones: the lengths of n one-frame or one-token inputs; cached."""
        ones = self._ones_cache.get(device)
        if ones is None or ones.shape[0] < n:
            ones = torch.ones(max(n, 16), dtype=torch.long, device=device)
            self._ones_cache[device] = ones
        return ones[:n]
