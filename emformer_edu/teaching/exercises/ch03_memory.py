"""Notebook 03 (memory bank): how many memory columns, the clamp without tanh, which chunk sits in the oldest slot.

Read from real Emformer runs: the memory a layer received, the memory it produced from huge
attention outputs, and the streaming cache after chunks whose frames carry their chunk's number.
"""
import torch

from ...transducer import streaming_chunks
from ._shared import Exercise, recorded_forward, small_emformer, training_call


def _memory_columns():
    # The memory vectors layer 0 actually read: T=20, segment 4, memory on.
    return training_call(20, 4, 1, max_memory_size=2).layers[0].memory_in.size(0)


def _clamp():
    # A huge output bias drives every summary output far beyond any bound; what comes out is the clamp.
    model = small_emformer(4, 1, max_memory_size=2, tanh_on_mem=False)
    model.emformer_layers[0].attention.out_proj.bias.data.fill_(1e6)
    return float(recorded_forward(model, 12).layers[0].memory_out.abs().max())


def _oldest_slot(chunk: int = 7, max_memory_size: int = 4) -> int:
    segment, right = 4, 1
    model = small_emformer(segment, right, max_memory_size=max_memory_size)
    # Every frame of chunk i holds i + 1, so layer 0's memory (segment averages) names its chunk; 0 = empty slot.
    frames = torch.arange((chunk + 1) * segment + right) // segment + 1
    x = frames.to(torch.float64)[None, :, None].expand(1, -1, model.input_dim)
    state = None
    for chunk_in, length in streaming_chunks(x, segment, right)[:chunk]:
        _, _, state = model.infer(chunk_in, length, state)
    # The cache as chunk `chunk` finds it; its oldest slot holds the smallest chunk number.
    slots = state[0].memory[:, 0, 0]
    return int(slots[slots > 0].min().round()) - 1


EXERCISES = {
    "03.memory_columns": Exercise("memory columns of the training mask for T=20, segment 4, memory on",
                                  _memory_columns),
    "03.clamp": Exercise("largest memory magnitude with tanh_on_mem=False", _clamp),
    "03.oldest_slot": Exercise("chunk whose memory is in the oldest slot while chunk 7 is processed, M=4",
                               _oldest_slot),
}
