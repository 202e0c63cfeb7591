"""The torchaudio contract: same state_dict, same numbers (float64, 1e-9) on the same weights."""
import inspect

import torch
import torchaudio

import emformer_edu
from conftest import factory_kwargs, make_pair

TOL = dict(rtol=0, atol=1e-9)


def test_public_signatures_match_torchaudio():
    for name in ["emformer_rnnt_model", "emformer_rnnt_base"]:
        assert inspect.signature(getattr(emformer_edu, name)).parameters.keys() == \
            inspect.signature(getattr(torchaudio.models, name)).parameters.keys()
    assert inspect.signature(emformer_edu.Emformer.__init__) .parameters.keys() == \
        inspect.signature(torchaudio.models.Emformer.__init__).parameters.keys()
    for method in ["forward", "transcribe", "transcribe_streaming", "predict", "join"]:
        assert inspect.signature(getattr(emformer_edu.RNNT, method)).parameters.keys() == \
            inspect.signature(getattr(torchaudio.models.RNNT, method)).parameters.keys(), method


def test_same_seed_gives_same_initial_weights(config_name):
    torch.manual_seed(3)
    edu = emformer_edu.emformer_rnnt_model(**factory_kwargs(config_name))
    torch.manual_seed(3)
    ta = torchaudio.models.emformer_rnnt_model(**factory_kwargs(config_name))
    for (k1, v1), (k2, v2) in zip(edu.state_dict().items(), ta.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1


def test_state_dict_loads_both_ways(config_name):
    torch.manual_seed(1)
    edu = emformer_edu.emformer_rnnt_model(**factory_kwargs(config_name))
    ta = torchaudio.models.emformer_rnnt_model(**factory_kwargs(config_name))
    sd_e, sd_t = edu.state_dict(), ta.state_dict()
    assert list(sd_e) == list(sd_t)
    assert all(sd_e[k].shape == sd_t[k].shape for k in sd_t)
    edu.load_state_dict(sd_t, strict=True)
    ta.load_state_dict(sd_e, strict=True)
    assert all(torch.equal(edu.state_dict()[k], sd_t[k]) for k in sd_t)


def test_base_state_dict_matches():
    sd_e = emformer_edu.emformer_rnnt_base(4097).state_dict()
    sd_t = torchaudio.models.emformer_rnnt_base(4097).state_dict()
    assert [(k, v.shape) for k, v in sd_e.items()] == [(k, v.shape) for k, v in sd_t.items()]


def _sources(edu, B, num_segments, seed=0):
    cfg = edu.config
    torch.manual_seed(seed)
    T = num_segments * cfg.segment_length + cfg.right_context_length
    return torch.randn(B, T, cfg.input_dim, dtype=torch.float64)


def test_transcribe_batch_unequal_lengths(config_name):
    edu, ta = make_pair(config_name)
    x = _sources(edu, 3, 4)
    T = x.size(1)
    lengths = torch.tensor([T, T - 5, T - 9])
    out_e, len_e = edu.transcribe(x, lengths)
    out_t, len_t = ta.transcribe(x, lengths)
    torch.testing.assert_close(out_e, out_t, **TOL)
    assert torch.equal(len_e, len_t)


def test_transcribe_streaming_chained_chunks(config_name):
    edu, ta = make_pair(config_name)
    cfg = edu.config
    seg, R = cfg.segment_length, cfg.right_context_length
    x = _sources(edu, 2, 5)
    state_e = state_t = None
    for chunk, lengths in emformer_edu.streaming_chunks(x, seg, R):
        out_e, len_e, state_e = edu.transcribe_streaming(chunk, lengths, state_e)
        out_t, len_t, state_t = ta.transcribe_streaming(chunk, lengths, state_t)
        torch.testing.assert_close(out_e, out_t, **TOL)
        assert torch.equal(len_e, len_t)
        for s_e, s_t in zip(state_e, state_t):
            for a, b in zip(s_e, s_t):
                torch.testing.assert_close(a, b.to(a.dtype), **TOL)


def test_predict_with_state_carried_over(config_name):
    edu, ta = make_pair(config_name)
    torch.manual_seed(0)
    tokens = torch.randint(0, edu.config.num_symbols, (2, 7))
    lengths = torch.tensor([7, 5])
    s_e = s_t = None
    for part in (tokens[:, :3], tokens[:, 3:]):
        out_e, _, s_e = edu.predict(part, lengths, s_e)
        out_t, _, s_t = ta.predict(part, lengths, s_t)
        torch.testing.assert_close(out_e, out_t, **TOL)
    for layer_e, layer_t in zip(s_e, s_t):
        for a, b in zip(layer_e, layer_t):
            torch.testing.assert_close(a, b, **TOL)


def test_join(config_name):
    edu, ta = make_pair(config_name)
    torch.manual_seed(0)
    D = edu.config.encoding_dim
    src, tgt = torch.randn(2, 5, D, dtype=torch.float64), torch.randn(2, 4, D, dtype=torch.float64)
    sl, tl = torch.tensor([5, 3]), torch.tensor([4, 2])
    for a, b in zip(edu.join(src, sl, tgt, tl), ta.join(src, sl, tgt, tl)):
        torch.testing.assert_close(a, b, **TOL)


def _forward_inputs(edu):
    x = _sources(edu, 2, 3, seed=4)
    T = x.size(1)
    torch.manual_seed(5)
    targets = torch.randint(0, edu.config.num_symbols - 1, (2, 4))
    return x, torch.tensor([T, T - 3]), targets, torch.tensor([4, 2])


def test_forward(config_name):
    edu, ta = make_pair(config_name)
    args = _forward_inputs(edu)
    out_e, out_t = edu(*args), ta(*args)
    for a, b in zip(out_e[:3], out_t[:3]):
        torch.testing.assert_close(a, b, **TOL)


def test_gradients_of_every_parameter_in_training_mode(config_name):
    edu, ta = make_pair(config_name, dropout=0.0)
    edu.train()
    ta.train()
    args = _forward_inputs(edu)
    for model in (edu, ta):
        logits = model(*args)[0]
        (logits.tanh() * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)).sum().backward()
    grads_t = dict(ta.named_parameters())
    for name, p in edu.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, grads_t[name].grad, **TOL, msg=name)
    assert sum(int(p.grad.abs().sum() > 0) for p in edu.parameters()) > 0.9 * len(list(edu.parameters()))


def test_float32_is_bit_identical_without_softmax_switch():
    """In float32 the default softmax path is torchaudio's path exactly."""
    torch.manual_seed(0)
    edu = emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc")).eval()
    ta = emformer_edu.torchaudio_twin(edu)
    x = torch.randn(2, 6 * 3 + 4, 6)
    lengths = torch.tensor([22, 15])
    assert torch.equal(edu.transcribe(x, lengths)[0], ta.transcribe(x, lengths)[0])


def test_float64_default_softmax_differs_from_torchaudio_only_by_float32_rounding():
    edu, ta = make_pair("s2_mem_lc_rc")
    emformer_edu.match_torchaudio_softmax(edu, enabled=False)
    x = _sources(edu, 1, 3)
    diff = (edu.transcribe(x, torch.tensor([x.size(1)]))[0] - ta.transcribe(x, torch.tensor([x.size(1)]))[0]).abs().max()
    assert 0 < diff < 1e-5
