"""Masks built block by block equal torchaudio's, and their labels describe the layout."""
import itertools

import pytest
import torch
import torchaudio

from emformer_edu.encoder.masks import inference_mask, key_padding_mask, training_mask


@pytest.mark.parametrize(
    "T,seg,R,L,M",
    [(T, seg, R, L, M) for T, seg, R, L, M in itertools.product([1, 7, 12, 13], [1, 3, 4], [0, 2], [0, 1, 5], [0, 1, 3])],
)
def test_training_mask_equals_torchaudio(T, seg, R, L, M):
    ta = torchaudio.models.Emformer(4, 1, 4, 1, seg, left_context_length=L, right_context_length=R, max_memory_size=M)
    expected = ta._gen_attention_mask(torch.zeros(T, 1, 4))
    mask = training_mask(T, seg, R, L, M)
    assert mask.blocked.dtype == torch.bool
    assert torch.equal(mask.blocked, expected)


def test_labels_and_layout():
    mask = training_mask(7, 3, 2, left_context_length=2, max_memory_size=1)
    # 3 segments (3, 3, 1 frames), rc 2 each, summaries on; memory columns = segments - 1
    assert mask.shape == (3 * 2 + 7 + 3, 2 + 3 * 2 + 7)
    assert mask.row_labels()[:6] == ["rc0", "rc0", "rc1", "rc1", "rc2", "rc2"]
    assert mask.row_labels()[6:13] == ["seg0"] * 3 + ["seg1"] * 3 + ["seg2"]
    assert mask.row_labels()[13:] == ["s0", "s1", "s2"]
    assert mask.col_labels()[:2] == ["m0", "m1"]
    assert "query rows  (16): rc0[2] rc1[2] rc2[2] seg0[3] seg1[3] seg2[1] s0[1] s1[1] s2[1]" in mask.describe()
    # Segment 1 sees: memory slot 0, its own rc block, 2 frames of left context and itself.
    row = mask.allowed[6 + 3]  # first frame of seg1
    assert row.nonzero().flatten().tolist() == [0, 4, 5, 8 + 1, 8 + 2, 8 + 3, 8 + 4, 8 + 5]
    # Summaries never read memory.
    assert not mask.allowed[13:, :2].any()


def test_inference_mask_blocks_only_summary_to_memory():
    mask = inference_mask(4, 2, num_memory=3, num_left_context=5, use_memory=True, segment_index=6)
    assert mask.shape == (2 + 4 + 1, 3 + 2 + 5 + 4)
    assert mask.blocked.sum() == 3 and mask.blocked[-1, :3].all()
    assert mask.col_labels()[:3] == ["m3", "m4", "m5"]
    no_mem = inference_mask(4, 2, 0, 0, use_memory=False)
    assert no_mem.shape == (6, 6) and not no_mem.blocked.any()


def test_key_padding_mask_pads_utterance_tail():
    mask = key_padding_mask(torch.tensor([5, 3, 4]), num_keys=9)
    assert mask.sum(1).tolist() == [0, 2, 1]
    assert mask[1, -2:].all() and not mask[1, :-2].any()
    assert key_padding_mask(torch.tensor([5]), 9) is None


@pytest.mark.parametrize("seg,R,L,M", [(4, 2, 3, 2), (3, 0, 0, 0), (4, 1, 8, 1), (2, 2, 1, 3)])
def test_training_and_inference_masks_show_each_query_the_same_keys(seg, R, L, M):
    """Why streaming equals training: for every segment, both masks expose the same keys."""
    T = 5 * seg
    train = training_mask(T, seg, R, L, M)
    for i in range(5):
        past = i * seg
        infer = inference_mask(seg, R, num_memory=min(M, i), num_left_context=min(L, past),
                               use_memory=M > 0, segment_index=i)
        for kind in (["right_context"] if R else []) + ["utterance"] + (["summary"] if M else []):
            t_row = next(b for b in train.rows if b.kind == kind and b.segment == i).start
            i_row = next(b for b in infer.rows if b.kind == kind).start
            assert train.visible_keys(t_row) == infer.visible_keys(i_row), (i, kind)


def test_latency_arithmetic_for_the_base_model():
    from emformer_edu.transducer.streaming import latency_ms

    lat = latency_ms(16, 4, time_reduction_stride=4, left_context_length=30)
    assert lat == {"segment": 160.0, "look_ahead": 40.0, "worst": 190.0, "best": 40.0, "average": 115.0,
                   "encoder_frame": 40.0, "left_context": 1200.0}
