"""Streaming equals full context: chunk-by-chunk ``infer`` reproduces one ``forward`` pass."""
import pytest
import torch

import emformer_edu
from conftest import factory_kwargs


@pytest.mark.parametrize("max_memory_size", [0, 2])
@pytest.mark.parametrize("left_context_length", [0, 3])
@pytest.mark.parametrize("right_context_length", [0, 2])
def test_streaming_equals_full_context(max_memory_size, left_context_length, right_context_length):
    """Feeding an utterance chunk by chunk through ``Emformer.infer`` equals ``Emformer.forward``."""
    torch.manual_seed(0)
    seg, R, N = 4, right_context_length, 6
    model = emformer_edu.Emformer(
        16, 2, 24, 3, seg, left_context_length=left_context_length, right_context_length=R,
        max_memory_size=max_memory_size, tanh_on_mem=True,
    ).double().eval()
    x = torch.randn(1, N * seg + R, 16, dtype=torch.float64)
    full, _ = model(x, torch.tensor([N * seg + R]))
    state, outs = None, []
    for chunk, length in emformer_edu.streaming_chunks(x, seg, R):
        out, _, state = model.infer(chunk, length, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["s2_mem_lc_rc", "s4_mem_rc", "s1_mem_lc_rc"])
def test_transcribe_streaming_equals_transcribe(name):
    """The same at the RNN-T level, through time reduction and the output projection, batch of 2."""
    torch.manual_seed(1)
    model = emformer_edu.emformer_rnnt_model(**factory_kwargs(name)).double().eval()
    seg, R, N = model.config.segment_length, model.config.right_context_length, 5
    x = torch.randn(2, N * seg + R, model.config.input_dim, dtype=torch.float64)
    full, _ = model.transcribe(x, torch.tensor([N * seg + R] * 2))
    state, outs = None, []
    for chunk, lengths in emformer_edu.streaming_chunks(x, seg, R):
        out, _, state = model.transcribe_streaming(chunk, lengths, state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=0, atol=1e-9)


def test_dropping_right_context_copies_changes_the_output():
    """The hard-copied right context matters: zeroing it in streaming gives a different encoding."""
    torch.manual_seed(0)
    seg, R, N = 4, 2, 4
    model = emformer_edu.Emformer(8, 2, 8, 2, seg, right_context_length=R, max_memory_size=2).double().eval()
    x = torch.randn(1, N * seg + R, 8, dtype=torch.float64)
    full, _ = model(x, torch.tensor([N * seg + R]))
    state, outs = None, []
    for chunk, length in emformer_edu.streaming_chunks(x, seg, R):
        chunk = chunk.clone()
        chunk[:, seg:] = 0
        out, _, state = model.infer(chunk, length, state)
        outs.append(out)
    assert (torch.cat(outs, 1) - full).abs().max() > 1e-3


def test_state_is_named_and_describable():
    torch.manual_seed(0)
    model = emformer_edu.Emformer(8, 2, 8, 2, 4, left_context_length=3, right_context_length=1, max_memory_size=2)
    _, _, state = model.infer(torch.randn(2, 5, 8), torch.tensor([5, 5]))
    _, _, state = model.infer(torch.randn(2, 5, 8), torch.tensor([5, 5]), state)
    s = state[0]
    assert isinstance(s, emformer_edu.LayerState)
    assert s.memory.shape == (2, 2, 8) and s.left_context_key.shape == (3, 2, 8)
    assert s.past_length.tolist() == [[8, 8]]
    text = emformer_edu.describe_state(state)
    assert "layer 1: memory (2, 2, 8)" in text and "past_length [8, 8]" in text
    # torchaudio's list-of-lists layout round-trips
    ta_state = emformer_edu.to_torchaudio_state(state)
    out_a = model.infer(torch.ones(2, 5, 8), torch.tensor([5, 5]), state)[0]
    out_b = model.infer(torch.ones(2, 5, 8), torch.tensor([5, 5]), ta_state)[0]
    assert torch.equal(out_a, out_b)
