"""Checks for the notebooks' end-of-chapter exercises.

Each check compares a learner's answer with the value the library computes, and prints a
short verdict instead of raising, so a wrong answer is feedback, not a crash.
"""
import math
from typing import Any, Callable, Dict

import torch

from ...encoder.layer import EmformerLayer
from ...encoder.masks import inference_mask, training_mask
from ...encoder.memory_bank import squash_memory
from ...encoder.segments import num_segments
from ...transducer.streaming import latency_ms

_CHECKS: Dict[str, Callable[[], Any]] = {
    # 00: rows and columns of the training mask for T=10, segment 4, R=2, memory on (M=2).
    "00.mask_shape": lambda: training_mask(10, 4, 2, max_memory_size=2).shape,
    # 00: how many key columns can the first frame of segment 2 attend to (T=12, seg 4, R=2, L=3, M=1)?
    "00.visible_keys": lambda: int(training_mask(12, 4, 2, left_context_length=3, max_memory_size=1).allowed[2 * 3 + 8].sum()),
    # 00: streaming chunk length in input frames for emformer_rnnt_base
    "00.base_chunk": lambda: 16 + 4,
    # 01: chunks for 1.3 s of features (131 frames incl. 4 right-padding) with segment 16, R 4
    "01.num_chunks": lambda: num_segments(131 - 4, 16),
    # 01: worst-case algorithmic latency (ms) with segment 8, R 2 input frames of 10 ms
    "01.worst_latency": lambda: latency_ms(8, 2)["worst"],
    # 01: feature frames for exactly 1 s of 16 kHz audio (center=True framing)
    "01.frames_per_second": lambda: 16000 // 160 + 1,
    # 02: memory slots the frames of segment 5 read with M=3 (T=24, segment 4, R=1)
    "02.memory_slots": lambda: [k for k in training_mask(24, 4, 1, 0, 3).visible_keys(6 * 1 + 5 * 4) if k.startswith("m")],
    # 02: keys a summary query sees (T=16, segment 4, R=2, L=6, M=2), for segment 3
    "02.summary_keys": lambda: len(training_mask(16, 4, 2, 6, 2).visible_keys(4 * 2 + 16 + 3)),
    # 02: allowed cells with no context at all (T=10, segment 4, R=0, L=0, M=0)
    "02.block_diagonal": lambda: int(training_mask(10, 4, 0, 0, 0).allowed.sum()),
}


def expected(name: str):
    """The library's answer for exercise ``name`` (what the hidden solutions compute by hand)."""
    if name not in _CHECKS:
        raise ValueError(f"unknown exercise {name!r}; known: {sorted(_CHECKS)}")
    return _CHECKS[name]()


def _equal(a, b) -> bool:
    if isinstance(b, float) or isinstance(a, float):
        return a is not None and math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-6)
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float())
    return tuple(a) == tuple(b) if isinstance(b, tuple) and a is not None else a == b


def is_correct(name: str, answer) -> bool:
    """True if ``answer`` matches the library's value for exercise ``name``."""
    return answer is not None and _equal(answer, expected(name))


def check(name: str, answer) -> None:
    """Print whether ``answer`` is right for exercise ``name`` (prints rather than returns, for notebooks)."""
    if answer is None:
        print(f"[{name}] no answer yet: assign your answer, then run this cell again.")
    elif is_correct(name, answer):
        print(f"[{name}] correct!")
    else:
        print(f"[{name}] not yet: {answer!r} is not the expected value. Try again.")


def _filled_cache_after(chunks: int):
    """(memory slots, left-context frames) filled after ``chunks`` chunks, read from a real state
    of an Emformer shaped like the toy model's (segment 4 frames, L=8, M=4)."""
    from ...encoder.emformer import Emformer

    model = Emformer(8, 2, 8, 1, 4, left_context_length=8, right_context_length=1, max_memory_size=4).eval()
    state = None
    with torch.no_grad():
        for _ in range(chunks):
            state = model.infer(torch.zeros(1, 5, 8), torch.tensor([5]), state)[2]
    memory, lc_key, _ = model.emformer_layers[0]._read_state(state[0])
    return memory.size(0), lc_key.size(0)


_CHECKS.update({
    # 05: chunks for 96 utterance frames (+ R=4) with segment_length 16
    "05.chunks": lambda: num_segments(96, 16),
    # 05: memory slots filled after 3 chunks (M=4)
    "05.memory_after_3": lambda: _filled_cache_after(3)[0],
    # 05: left-context frames cached after 1 chunk (L=8 encoder frames, 4 per chunk)
    "05.left_context_after_1": lambda: _filled_cache_after(1)[1],
})


# ----------------------------------------------------------------------------- notebooks 06 and 07
from ...rnnt.lattice import lattice_tables, utterance_lattice  # noqa: E402
from ...rnnt.loss import alignment_paths, rnnt_loss  # noqa: E402
from ...transducer.predictor import Predictor  # noqa: E402
from ...transducer.time_reduction import TimeReduction  # noqa: E402


def _06_joint_shape():
    from ...train.pretrained import toy  # the checkpoint is only read when this check runs
    from ...train.trainer import prepend_blank

    model = toy().model
    with torch.no_grad():
        out = model(torch.zeros(2, 204, 80), torch.tensor([200, 150]),
                    prepend_blank(torch.zeros(2, 7, dtype=torch.long), model.predictor.num_symbols - 1),
                    torch.tensor([4, 8]))[0]
    return tuple(out.shape)


def _06_predictor_state_numbers():
    # emformer_rnnt_base's predictor: 3 LSTM layers of 512 units (num_symbols 4097, encoding_dim 1024).
    with torch.no_grad():
        _, _, state = Predictor(4097, 1024, 512, 3, 512, lstm_layer_norm=True)(torch.tensor([[4096]]), torch.tensor([1]))
    return sum(x.numel() for layer in state for x in layer)


def _07_uniform_loss():
    # V = 2 (token 0 and blank 1), all logits 0: P(blank) = P(token) = 1/2 at every node.
    i32 = lambda *x: torch.tensor(x, dtype=torch.int32)  # noqa: E731
    return float(rnnt_loss(torch.zeros(1, 4, 3, 2, dtype=torch.float64), i32([0, 0]), i32(4), i32(2), blank=1))


def _07_occupancy_sum():
    logits = torch.randn(5, 4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return float(lattice_tables(*utterance_lattice(logits, [1, 2, 3])).node_posterior.sum())


_CHECKS.update({
    # 06: encoder frames left by time reduction (stride 4) from 123 input frames
    "06.reduced_length": lambda: int(TimeReduction(4)(torch.zeros(1, 123, 1), torch.tensor([123]))[1]),
    # 06: joint output shape of the toy model for 2 utterances (200 and 150 frames + R = 4), targets of 3 and 7 tokens
    "06.joint_shape": _06_joint_shape,
    # 06: numbers in emformer_rnnt_base's predictor state [[h, c]] * 3 layers for B = 1
    "06.predictor_state_numbers": _06_predictor_state_numbers,
    # 07: alignments through a lattice of T = 6 frames and U = 3 tokens
    "07.num_paths": lambda: sum(1 for _ in alignment_paths(6, 3)),
    # 07: RNN-T loss for T = 4, U = 2 when every blank and every token has probability 1/2
    "07.uniform_loss": _07_uniform_loss,
    # 07: sum of the node posteriors over the whole T = 5, U = 3 lattice (= expected path length T + U)
    "07.occupancy_sum": _07_occupancy_sum,
})


def _oldest_slot_source(chunk: int, max_memory_size: int = 4) -> int:
    """The chunk whose memory sits in the oldest slot when chunk ``chunk`` is processed, read from a recording."""
    from ...encoder.emformer import Emformer
    from ..recorder import memory_provenance, record

    torch.manual_seed(0)
    model = Emformer(8, 2, 8, 1, 4, right_context_length=1, max_memory_size=max_memory_size).eval()
    x, state = torch.randn(1, 4 * (chunk + 1) + 1, 8), None
    with torch.no_grad(), record() as rec:
        for i in range(chunk + 1):
            state = model.infer(x[:, 4 * i: 4 * i + 5], torch.tensor([5]), state)[2]
    return memory_provenance(rec, 0)[chunk][0]


_CHECKS.update({
    # 03: memory columns of the training mask for T=20 frames, segment 4, memory on
    "03.memory_columns": lambda: sum(len(b) for b in training_mask(20, 4, 1, 0, 2).cols if b.kind == "memory"),
    # 03: largest memory magnitude when tanh_on_mem=False
    "03.clamp": lambda: float(squash_memory(torch.tensor([1e6]), tanh_on_mem=False)),
    # 03: source chunk of the oldest slot at chunk 7, M=4
    "03.oldest_slot": lambda: _oldest_slot_source(7),
})


def _head_dim(model_dim: int, heads: int) -> int:
    from ...encoder.attention import EmformerAttention

    return EmformerAttention(model_dim, heads).head_dim


_CHECKS.update({
    # 04: (queries, keys) of a full streaming chunk: segment 4, R=1, memory 4 slots, left context 8
    "04.infer_mask_shape": lambda: inference_mask(4, 1, num_memory=4, num_left_context=8, use_memory=True).shape,
    # 04: per-head dimension for D=128 and 4 heads
    "04.head_dim": lambda: _head_dim(128, 4),
    # 04: parameters of one feed-forward block for D=128, ffn_dim=256 (LayerNorm + two Linears)
    "04.ffn_params": lambda: sum(p.numel() for p in EmformerLayer(128, 4, 256, 4).pos_ff.parameters()),
})


def _num_hypotheses(beam_width: int) -> int:
    """How many hypotheses a real beam search on the toy model returns."""
    from ...train.pretrained import toy

    model = toy()
    utt = model.held_out(1)[0]
    feats = model.features(utt.waveform)
    with torch.no_grad():
        return len(model.beam_search()(feats.unsqueeze(0), torch.tensor([feats.size(0)]), beam_width))


def _timestamp_seconds(encoder_frame: int, stride: int) -> float:
    from ...rnnt.timestamps import token_timestamps

    return token_timestamps([0], [encoder_frame], stride)[0].seconds


_CHECKS.update({
    # 08: seconds of a token emitted at encoder frame 7, stride 4, 10 ms hop
    "08.seconds": lambda: _timestamp_seconds(7, 4),
    # 08: streaming chunk (0-based) that emits a token at encoder frame 9 (segment 16 input frames, stride 4)
    "08.chunk": lambda: 9 * 4 // 16,
    # 08: hypotheses returned by RNNTBeamSearch.forward with beam_width=3 (enough candidates)
    "08.num_hypotheses": lambda: _num_hypotheses(3),
})


def _train_module():
    from ...train import trainer

    return trainer


_CHECKS.update({
    # 09: learning rate at step 19 (20th step) with lr 2e-3 and 40 warm-up steps
    "09.warmup_lr": lambda: 2e-3 * _train_module().warmup_cosine(19, 40, 150, 0.02),
    # 09: predictor input length for a transcript of 9 tokens (blank prepended)
    "09.predictor_length": lambda: int(_train_module().prepend_blank(torch.zeros(1, 9, dtype=torch.int32), 20).shape[1]),
    # 09: optimizer steps per epoch with 900 utterances and batch size 24
    "09.steps_per_epoch": lambda: 900 // 24,
})
