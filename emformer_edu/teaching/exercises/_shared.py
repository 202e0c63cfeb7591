"""What the chapter tables share: the table entry, the shipped model (loaded once), small recorded Emformers.

Expected values come from the library doing the real thing: an Emformer attends and we count the
keys that received probability, a model encodes and we count its frames. The notebooks' hidden
solutions get the same numbers by hand, so a wrong formula in a solution, or a library change that
breaks what the chapter teaches, shows up as a failing check.

Every expected-value function runs under a fixed seed with the global random state saved and
restored (see ``exercises.expected``), so they may build randomly initialised models freely.
"""
import functools
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import torch

from ...encoder import Emformer
from ...train import pretrained
from ..recorder import CallRecord, record


class Exercise(NamedTuple):
    """One table entry: what the exercise asks, and a function computing its answer with the library.

    A *coding* exercise (the learner writes a function) also has ``cases``: a function returning a
    list of inputs, each a dict of keyword arguments. ``compute`` is then the library's own function,
    taking those keywords; the learner's function must return what it returns on every case
    (compared as :mod:`.compare` describes: a tensor within a relative 1e-3, a number, a shape).
    Cases are drawn under a fixed seed, small first, so the first failing case is easy to read.
    """

    description: str
    compute: Callable[..., Any]
    cases: Optional[Callable[[], List[Dict[str, Any]]]] = None

    @property
    def is_coding(self) -> bool:
        return self.cases is not None


@functools.lru_cache(maxsize=None)
def toy() -> pretrained.Pretrained:
    """The shipped toy model, loaded once for every check that needs it (in eval mode)."""
    return pretrained.toy()


@functools.lru_cache(maxsize=None)
def spoken() -> pretrained.Pretrained:
    """The shipped spoken model, loaded once for every check that needs it (in eval mode)."""
    return pretrained.spoken()


def small_emformer(segment_length: int, right_context_length: int, left_context_length: int = 0,
                   max_memory_size: int = 0, tanh_on_mem: bool = True, input_dim: int = 8,
                   num_heads: int = 2) -> Emformer:
    """A one-layer float64 Emformer: small enough to be instant, float64 so blocked keys get exactly 0."""
    return Emformer(input_dim, num_heads, 2 * input_dim, 1, segment_length,
                    left_context_length=left_context_length, right_context_length=right_context_length,
                    max_memory_size=max_memory_size, tanh_on_mem=tanh_on_mem).double().eval()


def recorded_forward(model: Emformer, utterance_length: int) -> CallRecord:
    """Run ``model`` over ``utterance_length`` random frames (+ its right context) and return the recording."""
    T = utterance_length + model.right_context_length
    with record() as rec:
        model(torch.randn(1, T, model.input_dim, dtype=torch.float64), torch.tensor([T]))
    return rec.calls[0]


def training_call(utterance_length: int, segment_length: int, right_context_length: int,
                  left_context_length: int = 0, max_memory_size: int = 0) -> CallRecord:
    """The recording of a full-utterance (training-mode) pass with these settings."""
    model = small_emformer(segment_length, right_context_length, left_context_length, max_memory_size)
    return recorded_forward(model, utterance_length)


def query_row(call: CallRecord, kind: str, segment: int) -> int:
    """Row of the first ``kind`` query ("utterance", "right_context", "summary") of ``segment`` in ``call``."""
    return next(b.start for b in call.mask.rows if b.kind == kind and b.segment == segment)


def attended_keys(call: CallRecord, row: int) -> torch.Tensor:
    """Indices of the keys query ``row`` gave probability to: read from the softmax, not from the mask."""
    return (call.layers[0].attention_probs[0, 0, row] > 0).nonzero().flatten()


def filled_rows(cache: torch.Tensor) -> int:
    """Rows of a streaming cache ``(slots, B, D)`` holding a real vector (the cache starts as zeros)."""
    return int((cache.abs().sum(dim=(1, 2)) > 0).sum())
