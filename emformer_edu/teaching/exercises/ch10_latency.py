"""Notebook 10 (latency): write the algorithmic latency (coding), and time one real word's end as a
streaming recogniser shows it.

The learner's latency function is compared with :func:`~emformer_edu.transducer.streaming.latency_ms` on
the variants' geometries and on random segment and look-ahead sizes. The word's delay comes from
:func:`~emformer_edu.train.latency.word_end_delays` decoding a held-out sentence chunk by chunk with the
shipped spoken model; the notebook's hidden solution gets it by hand from the emitting frame.
"""
import torch

from ...train.latency import word_end_delays
from ...transducer.streaming import latency_ms
from ._shared import Exercise, spoken

# The sentence of exercise 2 (and notebook 10's): held-out sentence 3 of pretrained.spoken().held_out(8) (seed 2).
AVAILABLE_SENTENCE = 3


def _latency(segment_length: int, right_context_length: int):
    lat = latency_ms(segment_length, right_context_length)
    return lat["worst"], lat["average"]


def _latency_cases():
    fixed = [(16, 4), (8, 4), (16, 0), (1, 0), (4, 2)]  # the variants' geometries and the smallest ones first
    drawn = torch.randint(1, 65, (6,)).tolist(), torch.randint(0, 33, (6,)).tolist()
    return [dict(segment_length=s, right_context_length=r) for s, r in fixed + list(zip(*drawn))]


def _available_first_word() -> float:
    pre = spoken()
    utt = pre.held_out(8)[AVAILABLE_SENTENCE]
    delays = word_end_delays(pre.model, [utt], pre.feature_extractor, pre.blank, pre.vocab)
    return float(delays.available_ms[0])  # word_end_delays keeps the words recognised right: the first of those


EXERCISES = {
    "10.latency": Exercise("algorithmic_latency(segment_length, right_context_length) -> (worst_ms, average_ms)",
                           _latency, cases=_latency_cases),
    "10.available": Exercise("ms from the true end of the first word of held-out sentence 3 that the shipped spoken "
                             "model recognises right to when a streaming recogniser holds its last character",
                             _available_first_word),
}
