"""The recorder sees what the model computes and changes nothing."""
import torch

import emformer_edu
from conftest import factory_kwargs


def _model():
    torch.manual_seed(0)
    return emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc")).eval()


def test_recording_leaves_outputs_identical():
    model = _model()
    x = torch.randn(2, 6 * 3 + 4, 6)
    lengths = torch.tensor([22, 17])
    plain = model.transcribe(x, lengths)[0]
    with emformer_edu.record() as rec:
        recorded = model.transcribe(x, lengths)[0]
    assert torch.equal(plain, recorded)
    state_a = state_b = None
    for i in range(3):
        chunk = x[:, i * 6: i * 6 + 10]
        a, _, state_a = model.transcribe_streaming(chunk, torch.tensor([10, 10]), state_a)
        with emformer_edu.record():
            b, _, state_b = model.transcribe_streaming(chunk, torch.tensor([10, 10]), state_b)
        assert torch.equal(a, b)


def test_forward_record_contents():
    model = _model()
    x = torch.randn(1, 6 * 3 + 4, 6)
    with emformer_edu.record() as rec:
        model.transcribe(x, torch.tensor([22]))
    (call,) = rec.calls
    assert call.mode == "forward" and call.utterance_length == 9  # stride 2: 18 -> 9 frames
    assert [s.segment for s in call.spans] == [(0, 3), (3, 6), (6, 9)]
    assert [s.right_context for s in call.spans] == [(3, 5), (6, 8), (9, 11)]
    assert len(call.layers) == 3 and [l.layer for l in call.layers] == [0, 1, 2]
    layer = call.layers[0]
    Q, K = call.mask.shape
    assert layer.attention_probs.shape == (1, 2, Q, K)
    torch.testing.assert_close(layer.attention_probs.sum(-1), torch.ones(1, 2, Q))
    assert (layer.attention_probs[0, :, call.mask.blocked] == 0).all()
    assert layer.memory_in.shape == (2, 1, 8) and layer.memory_out.shape == (3, 1, 8)
    # The memory a layer reads is the memory the layer below wrote (minus the last segment's).
    torch.testing.assert_close(call.layers[1].memory_in, call.layers[0].memory_out[:-1])
    assert layer.memory_out.abs().max() <= 1  # tanh_on_mem


def test_infer_record_contents():
    model = _model()
    x = torch.randn(1, 6 * 4 + 4, 6)
    state = None
    with emformer_edu.record() as rec:
        for i in range(4):
            _, _, state = model.transcribe_streaming(x[:, i * 6: i * 6 + 10], torch.tensor([10]), state)
    assert [c.mode for c in rec.calls] == ["infer"] * 4
    assert [c.frames_before for c in rec.calls] == [0, 3, 6, 9]
    assert rec.calls[2].spans[0].segment == (6, 9) and rec.calls[2].spans[0].left_context == (2, 6)
    assert rec.calls[0].state_before is None
    third = rec.calls[2].layers[0]
    assert third.left_context_key.shape == (4, 1, 8)  # min(L=4, 6 frames seen)
    assert third.memory_in.shape == (2, 1, 8)
    assert rec.calls[2].mask.col_labels()[:2] == ["m0", "m1"]
    torch.testing.assert_close(rec.calls[3].state_before[0].memory, rec.calls[2].state_after[0].memory)
