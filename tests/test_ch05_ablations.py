"""Notebook 05's ablation (emformer_edu.teaching.ablations): the rewired mask, the pass with the library's layers,
what a streaming recogniser can compute, and the receptive field propagated through the masks, checked against
what a real network's outputs depend on."""
import copy

import pytest
import torch

import emformer_edu
from emformer_edu import pretrained
from emformer_edu.encoder.masks import training_mask
from emformer_edu.teaching import ablations
from emformer_edu.transducer.model import build_model

# S = 4, R = 2 encoder frames, L = 4, M = 2, three layers
TINY = emformer_edu.EmformerRNNTConfig.tiny().replace(transformer_num_layers=3)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(TINY).double().eval()


@pytest.fixture(scope="module")
def spoken():
    return pretrained.spoken()


def _geometry(model):
    em = model.transcriber.transformer
    return em.segment_length, em.right_context_length, em.left_context_length, em.max_memory_size


def test_next_segment_mask_moves_only_the_look_ahead():
    S, R, T = 4, 2, 14  # a partly filled last segment
    mask = training_mask(T, S, R, left_context_length=4, max_memory_size=2)
    rewired = ablations.next_segment_mask(mask, S, R)
    assert rewired.rows == mask.rows and rewired.cols == mask.cols
    cols = {(b.kind, b.segment): b for b in mask.cols}
    utterance0 = cols[("utterance", 0)].start
    N = 4
    for block in mask.rows:
        before, after = mask.allowed[block.start:block.stop], rewired.allowed[block.start:block.stop]
        changed = (before != after).any(0).nonzero().flatten().tolist()
        if block.kind == "right_context" or block.segment == N - 1:
            assert changed == [], block
            continue
        rc = cols[("right_context", block.segment)]
        end = (block.segment + 1) * S
        expected = list(range(rc.start, rc.stop)) + list(range(utterance0 + end, utterance0 + min(end + R, T)))
        assert changed == expected, block
        assert not after[:, rc.start:rc.stop].any() and after[:, utterance0 + end:utterance0 + min(end + R, T)].all()
    assert not mask.allowed.equal(rewired.allowed)
    assert training_mask(T, S, R, 4, 2).allowed.equal(mask.allowed)  # the library's mask is not modified


def test_encode_with_the_library_mask_is_transcribe_bit_for_bit(spoken):
    model = spoken.model
    for frames in (3 * 16 + 4, 50 + 4):  # whole segments; a partly filled last segment
        features = torch.randn(frames, 80)
        with torch.no_grad():
            want, _ = model.transcribe(features.unsqueeze(0), torch.tensor([frames]))
            got = ablations.encode(model, features, "hard copies")
            ablated = ablations.encode(model, features, "next segment")
        assert torch.equal(got, want[0])
        assert (ablated - want[0]).abs().max() > 1e-3  # the rewiring changes the trained model's encodings


def test_encode_checks_its_arguments(tiny_model):
    with pytest.raises(ValueError, match="mode"):
        ablations.encode(tiny_model, torch.randn(20, 16, dtype=torch.float64), "no copies")
    with pytest.raises(ValueError, match="one utterance"):
        ablations.encode(tiny_model, torch.randn(1, 20, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="wait"):
        ablations.prefix_encodings(tiny_model, torch.randn(36, 16, dtype=torch.float64), wait=1)


@pytest.mark.parametrize("mode", ablations.MODES)
def test_reachability_is_what_the_network_depends_on(tiny_model, mode):
    """Perturb one input frame at a time: the outputs that change are exactly those the masks say can depend on it."""
    S, R, L, M = _geometry(tiny_model)
    stride = tiny_model.transcriber.time_reduction.stride
    T = 14
    features = torch.randn((T + R) * stride, TINY.input_dim, dtype=torch.float64)
    with torch.no_grad():
        base = ablations.encode(tiny_model, features, mode)
        depends = torch.zeros(T, T + R, dtype=torch.bool)
        for f in range(T + R):
            moved = features.clone()
            moved[f * stride:(f + 1) * stride] += torch.randn(stride, TINY.input_dim, dtype=torch.float64)
            depends[:, f] = (ablations.encode(tiny_model, moved, mode) != base).any(-1)
    mask = training_mask(T, S, R, L, M)
    if mode == "next segment":
        mask = ablations.next_segment_mask(mask, S, R)
    reach = ablations.reachability(mask, TINY.transformer_num_layers, S, R)
    assert len(reach) == TINY.transformer_num_layers + 1 and reach[0].equal(torch.eye(T + R, dtype=torch.bool)[:T])
    assert torch.equal(reach[-1], depends)


def test_look_ahead_stays_r_with_copies_and_grows_by_a_segment_per_layer_without():
    for S, R, L, M in [(4, 1, 8, 4), (8, 2, 0, 0), (3, 3, 2, 1)]:
        mask = training_mask(12 * S, S, R, L, M)
        with_copies = ablations.reachability(mask, 6, S, R)
        without = ablations.reachability(ablations.next_segment_mask(mask, S, R), 6, S, R)
        assert [ablations.look_ahead(r, S) for r in with_copies[1:]] == [R] * 6
        assert [ablations.look_ahead(r, S) for r in without[1:]] == [(n - 1) * S + R for n in range(1, 7)]


def test_streaming_reproduces_the_training_pass_only_with_hard_copies(tiny_model):
    S, R, _, _ = _geometry(tiny_model)
    stride = tiny_model.transcriber.time_reduction.stride
    layers = TINY.transformer_num_layers
    features = torch.randn((8 * S + R) * stride, TINY.input_dim, dtype=torch.float64)
    middle = [1, 2]
    with torch.no_grad():
        full = {mode: ablations.encode(tiny_model, features, mode) for mode in ablations.MODES}
        target = {mode: torch.cat([out[i * S:(i + 1) * S] for i in middle]) for mode, out in full.items()}
        # Hard copies: what has arrived R frames after each segment is enough (streaming = full context).
        streamed = ablations.prefix_encodings(tiny_model, features, "hard copies")
        assert (streamed - full["hard copies"]).abs().max() < 1e-12
        # Without them: not with R frames, and not one frame short of the receptive field; exactly from it on.
        field = (layers - 1) * S + R
        for wait in (R, field - 1):
            got = ablations.prefix_encodings(tiny_model, features, "next segment", wait=wait, segments=middle)
            assert (got - target["next segment"]).abs().max() > 1e-6, wait
        got = ablations.prefix_encodings(tiny_model, features, "next segment", wait=field, segments=middle)
        assert (got - target["next segment"]).abs().max() < 1e-12


def test_prefix_encodings_with_hard_copies_is_the_library_streaming_loop(spoken):
    model = copy.deepcopy(spoken.model).double()
    features = torch.randn(4 * 16 + 4, 80, dtype=torch.float64)
    with torch.no_grad():
        state, pieces = None, []
        for chunk, length in spoken.chunks(features):
            out, _, state = model.transcribe_streaming(chunk, length, state)
            pieces.append(out)
        streamed = torch.cat(pieces, dim=1)[0]
        assert (ablations.prefix_encodings(model, features, "hard copies") - streamed).abs().max() < 1e-12
