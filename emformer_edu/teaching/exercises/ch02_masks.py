"""Notebook 02 (attention masks): which memory slots a frame reads, what a summary sees, the no-context mask.

Every value is read from the attention probabilities of a real Emformer pass: a key counts if the
softmax gave it probability, so these checks test what the model does, not how the mask is drawn.
"""
from ._shared import Exercise, attended_keys, query_row, training_call


def _memory_slots():
    # Memory columns come first in the key layout, one per memory vector the layer read.
    call = training_call(24, 4, 1, left_context_length=0, max_memory_size=3)
    num_memory = call.layers[0].memory_in.size(0)
    keys = attended_keys(call, query_row(call, "utterance", 5)).tolist()
    return frozenset(f"m{j}" for j in keys if j < num_memory)


def _summary_keys():
    call = training_call(16, 4, 2, left_context_length=6, max_memory_size=2)
    return len(attended_keys(call, query_row(call, "summary", 3)))


def _block_diagonal():
    probs = training_call(10, 4, 0).layers[0].attention_probs
    return int((probs[0, 0] > 0).sum())


EXERCISES = {
    # A set: the slots are an answer in any order.
    "02.memory_slots": Exercise("memory slots read by segment 5 (T=24, segment 4, R=1, L=0, M=3), as names m<j>",
                                _memory_slots),
    "02.summary_keys": Exercise("keys the summary query of segment 3 sees (T=16, segment 4, R=2, L=6, M=2)",
                                _summary_keys),
    "02.block_diagonal": Exercise("allowed cells with no context (T=10, segment 4, R=0, L=0, M=0)", _block_diagonal),
}
