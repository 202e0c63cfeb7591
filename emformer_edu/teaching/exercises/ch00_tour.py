"""Notebook 00 (tour): the training mask's size, what one frame sees, the base model's streaming chunk.

The notebook's solutions count by hand; these values come from a real Emformer pass (its recorded
attention) and from cutting features with the real chunker.
"""
import torch

from ...config import EmformerRNNTConfig
from ...transducer import streaming_chunks
from ._shared import Exercise, attended_keys, query_row, training_call


def _mask_shape():
    # (queries, keys) of the attention the Emformer actually computed: T=10, segment 4, R=2, memory on (M=2).
    probs = training_call(10, 4, 2, max_memory_size=2).layers[0].attention_probs
    return tuple(probs.shape[-2:])


def _visible_keys():
    # Keys given probability by the first frame of segment 2 (T=12, segment 4, R=2, L=3, M=1).
    call = training_call(12, 4, 2, left_context_length=3, max_memory_size=1)
    return len(attended_keys(call, query_row(call, "utterance", 2)))


def _base_chunk():
    # Width of the chunks the real chunker cuts for emformer_rnnt_base's settings.
    cfg = EmformerRNNTConfig.base()
    features = torch.zeros(2 * cfg.segment_length + cfg.right_context_length, cfg.input_dim)
    chunk, _ = streaming_chunks(features, cfg.segment_length, cfg.right_context_length)[0]
    return chunk.shape[1]


EXERCISES = {
    "00.mask_shape": Exercise("(queries, keys) of the training mask for T=10, segment 4, R=2, M=2", _mask_shape),
    "00.visible_keys": Exercise("keys the first frame of segment 2 attends to (T=12, segment 4, R=2, L=3, M=1)",
                                _visible_keys),
    "00.base_chunk": Exercise("input frames per transcribe_streaming chunk of emformer_rnnt_base", _base_chunk),
}
