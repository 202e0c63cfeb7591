"""Notebook 04 (inside one layer): a streaming chunk's attention shape, the per-head width, the feed-forward size.

The shape is that of the attention a real streaming chunk computed once the cache is full; the head
width is read from a real attention module; the feed-forward parameters are counted.
"""
import torch

from ...encoder import EmformerAttention, EmformerLayer
from ...transducer import streaming_chunks
from ..recorder import record
from ._shared import Exercise, small_emformer


def _infer_mask_shape():
    # Segment 4, R=1, M=4, L=8: after 4 chunks both caches are full, so chunk 4 is a "full" chunk.
    model = small_emformer(4, 1, left_context_length=8, max_memory_size=4)
    x = torch.randn(1, 5 * 4 + 1, model.input_dim, dtype=torch.float64)
    state = None
    with record() as rec:
        for chunk, length in streaming_chunks(x, 4, 1):
            _, _, state = model.infer(chunk, length, state)
    return tuple(rec.calls[-1].layers[0].attention_probs.shape[-2:])


def _head_dim(model_dim: int = 128, num_heads: int = 4) -> int:
    # What a real attention module splits each query into (the solution computes it by hand).
    return EmformerAttention(model_dim, num_heads).head_dim


def _ffn_params():
    return sum(p.numel() for p in EmformerLayer(128, 4, 256, 4).pos_ff.parameters())


EXERCISES = {
    "04.infer_mask_shape": Exercise("(queries, keys) of a full streaming chunk: segment 4, R=1, M=4, L=8",
                                    _infer_mask_shape),
    "04.head_dim": Exercise("per-head query/key dimension for D=128 and 4 heads", _head_dim),
    "04.ffn_params": Exercise("parameters of one feed-forward block (pos_ff), D=128, ffn_dim=256", _ffn_params),
}
