"""Notebook 08 (decoding): write greedy decoding (coding), which hypothesis the beam ranks first, the
streaming chunk that emits a frame's tokens.

The learner's greedy decoder is compared with the library's :func:`~emformer_edu.rnnt.greedy.greedy_search`
on the shipped spoken model: encoder outputs of held-out sentences and random encodings (which make the
joiner emit several tokens per frame, so the ``max_symbols_per_frame`` cap matters). The ranking uses the
library's own sort key, and the chunk comes from the encoder frames the shipped model produces chunk by chunk.
"""
import torch

from ...rnnt.beam_search import Hypothesis, _default_hypo_sort_key
from ...rnnt.greedy import greedy_search
from ._shared import Exercise, spoken, toy


def _greedy(model, enc_out: torch.Tensor, blank: int, max_symbols_per_frame: int):
    """The library's greedy search over every frame of ``enc_out`` (1, T, D): the emitted token ids (a tuple,
    the form the check compares a learner's list with)."""
    lengths = torch.tensor([enc_out.shape[1]])
    return tuple(greedy_search(model, enc_out, lengths, blank, max_symbols_per_frame).tokens[0])


RANDOM_CASES_SEED = 4  # its first two cases emit 4 tokens in 4 frames and 10 in 8: several per frame


def _greedy_cases():
    pre = spoken()
    model, D = pre.model, pre.model.config.encoding_dim

    def sentence(index: int, max_symbols: int):
        # Test-split sentences (held-out voices and word pairs) of a seed the notebook does not use.
        utt = pre.held_out(4, seed=3)[index]
        features = pre.features(utt.waveform)  # (T + R, F)
        T = torch.tensor([features.shape[0] - pre.right_context_length])
        enc_out, _ = model.transcribe(features.unsqueeze(0), T)  # (1, T / stride, D)
        return dict(model=model, enc_out=enc_out, blank=pre.blank, max_symbols_per_frame=max_symbols)

    # Its own generator: the draws must not depend on what else used the global stream first (loading the model does).
    g = torch.Generator().manual_seed(RANDOM_CASES_SEED)

    def random(T: int, scale: float, max_symbols: int):
        # Random encodings: the joiner then often emits several tokens at one frame, up to the cap.
        return dict(model=model, enc_out=scale * torch.randn(1, T, D, generator=g), blank=pre.blank,
                    max_symbols_per_frame=max_symbols)

    # Small first: 4 random frames under a cap of 3; then spoken sentences, one with a cap of 1.
    return [random(4, 3.0, 3), random(8, 3.0, 10), sentence(1, 10), sentence(0, 1), sentence(2, 10)]


def _rank_first():
    # Two hypotheses of B after one frame, with scores like those of notebook 08's figure (tokens start with the blank).
    vocab = spoken().vocab
    blank = vocab.blank
    candidates = {text: Hypothesis([blank] + vocab.encode(text), None, None, score)
                  for text, score in (("k", -5.42), ("qu", -6.73))}
    return max(candidates, key=lambda text: _default_hypo_sort_key(candidates[text]))


def _chunk(encoder_frame: int = 9) -> int:
    # The toy model has segment_length 16 input frames and stride 4; count the frames each chunk encodes.
    model = toy()
    features = torch.zeros(4 * model.segment_length + model.right_context_length, 80)
    state, frames_before = None, 0
    for index, (chunk, length) in enumerate(model.chunks(features)):
        _, encoded, state = model.model.transcribe_streaming(chunk, length, state)
        if frames_before <= encoder_frame < frames_before + int(encoded[0]):
            return index
        frames_before += int(encoded[0])
    raise ValueError(f"encoder frame {encoder_frame} is beyond the features")


EXERCISES = {
    "08.greedy": Exercise("greedy(model, enc_out, blank, max_symbols_per_frame) -> emitted token ids",
                          _greedy, cases=_greedy_cases),
    "08.rank_first": Exercise("which of 'k' (log P -5.42) and 'qu' (log P -6.73) the beam ranks first", _rank_first),
    "08.chunk": Exercise("streaming chunk (from 0) emitting at encoder frame 9, segment 16, stride 4", _chunk),
}
