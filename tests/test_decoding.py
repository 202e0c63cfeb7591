"""Tests for emformer_edu.rnnt decoding: greedy search, beam search (== torchaudio),
timestamps, and the refusal of non-finite input."""

import copy
import dataclasses

import pytest
import torch
import torchaudio

import emformer_edu
from emformer_edu import EmformerRNNTConfig

from emformer_edu import (
    Hypothesis,
    RNNTBeamSearch,
    greedy_decode,
    greedy_infer,
    greedy_search,
    token_timestamps,
)
from emformer_edu.rnnt import decode, decode_streaming

CFG = EmformerRNNTConfig.tiny(num_symbols=12).replace(
    input_dim=8, encoding_dim=16, segment_length=4, right_context_length=2,  # input frames: 2 + 1 encoder frames
    transformer_ffn_dim=16, transformer_activation="relu", transformer_left_context_length=8,
    symbol_embedding_dim=16, lstm_layer_norm_epsilon=1e-5)
V = CFG.num_symbols
BLANK = V - 1  # torchaudio's beam search reads the last joiner output as blank
RC = CFG.right_context_length
CHUNK = CFG.segment_length + RC
T_IN = 40  # utterance input frames -> 20 encoder frames


def _make_ta_model(seed=0, blank_bias=4.0):
    """Random torchaudio Emformer RNN-T whose joiner is sharp enough to emit a
    mix of blanks and tokens (random init alone is nearly uniform)."""
    torch.manual_seed(seed)
    model = torchaudio.models.emformer_rnnt_model(**dataclasses.asdict(CFG)).eval()
    with torch.no_grad():
        model.joiner.linear.weight.mul_(3.0)
        model.joiner.linear.bias[BLANK] += blank_bias
    return model



@pytest.fixture(scope="module")
def model():
    return _make_ta_model()


@pytest.fixture(scope="module")
def utterance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, T_IN + RC, CFG.input_dim, generator=g)
    return x, torch.tensor([T_IN])


def _chunks(x):
    """(1, T + rc, F) -> the streaming chunks of segment + rc frames (the last one zero-padded)."""
    return [chunk for chunk, _ in emformer_edu.streaming_chunks(x, CFG.segment_length, RC)]


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    assert [h[0] for h in ours] == [h[0] for h in theirs]
    assert [h[3] for h in ours] == [float(h[3]) for h in theirs]  # bit-identical float32 scores
    for h, r in zip(ours, theirs):
        assert torch.equal(h[1], r[1])
        assert all(torch.equal(a, b) for la, lb in zip(h[2], r[2]) for a, b in zip(la, lb))


# --------------------------------------------------------------------------- #
# Beam search == torchaudio
# --------------------------------------------------------------------------- #
OPTIONS = {
    "default": {},
    "temperature": dict(temperature=1.7),
    "step_max_tokens=1": dict(step_max_tokens=1),
    "hypo_sort_key": dict(hypo_sort_key=lambda h: h[3]),  # rank by raw score; h[3] so torchaudio can use it
}


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("beam_width", range(1, 11))
def test_beam_search_matches_torchaudio(model, utterance, beam_width, options):
    x, length = utterance
    kwargs = OPTIONS[options]
    with torch.no_grad():
        theirs = torchaudio.models.RNNTBeamSearch(model, BLANK, **kwargs)(x, length, beam_width)
    ours = RNNTBeamSearch(model, BLANK, **kwargs)(x, length, beam_width)
    _assert_same(ours, theirs)
    assert len(ours[0].tokens) > (3 if options == "default" else 1)  # the test model really emits tokens
    assert all(h.num_frames == T_IN // CFG.time_reduction_stride for h in ours)


@pytest.mark.parametrize("which", ["torchaudio model", "edu model"])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("beam_width", range(1, 11))
def test_streaming_beam_search_matches_torchaudio(model, edu_model, utterance, beam_width, options, which):
    """Our streaming beam search, on torchaudio's model or on ours with its weights, equals torchaudio's
    chunk by chunk, each search carrying its own transcriber state and hypotheses."""
    kwargs = OPTIONS[options]
    ta_search = torchaudio.models.RNNTBeamSearch(model, BLANK, **kwargs)
    search = RNNTBeamSearch(model if which == "torchaudio model" else edu_model, BLANK, **kwargs)
    ta_state = ta_hyps = state = hyps = None
    with torch.no_grad():
        for chunk in _chunks(utterance[0]):
            length = torch.tensor([CHUNK])
            ta_hyps, ta_state = ta_search.infer(chunk, length, beam_width, ta_state, ta_hyps)
            hyps, state = search.infer(chunk, length, beam_width, state, hyps)
            _assert_same(hyps, ta_hyps)
    assert all(h.num_frames == T_IN // CFG.time_reduction_stride for h in hyps)


def test_options_change_the_search(model, utterance):
    """The option cases above are not the default case again: each option changes the result."""
    default = RNNTBeamSearch(model, BLANK)(*utterance, 4)
    for name, kwargs in OPTIONS.items():
        if name != "default":
            assert [h.score for h in RNNTBeamSearch(model, BLANK, **kwargs)(*utterance, 4)] != [h.score for h in default]


def test_parity_cases_merge_hypotheses(model, utterance):
    """The search merges equal token sequences along the way, so the parity tests cover merging."""
    merges = []

    class Counting(RNNTBeamSearch):
        def _add_blank(self, a, log_probs, b):
            before = len(b)
            b = super()._add_blank(a, log_probs, b)
            merges.append(before + len(a) - len(b))
            return b

    Counting(model, BLANK)(*utterance, 4)
    assert sum(merges) > 0


def test_merged_hypotheses_keep_the_emission_frames_of_the_likelier_path():
    """Two paths with the same tokens merge; their timestamps must come from the more probable one."""
    searcher = RNNTBeamSearch(None, blank=2)
    early = Hypothesis([0, 1], torch.zeros(1, 4), [], -1.0, [3, 5])  # likelier path, tokens emitted at frames 3 and 5
    late = Hypothesis([0, 1], torch.zeros(1, 4), [], -4.0, [6, 7])
    log_probs = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    for first, second in [(early, late), (late, early)]:
        merged = list(searcher._add_blank([second], log_probs, {(0, 1): first}).values())
        assert len(merged) == 1 and merged[0].timesteps == [3, 5]
        expected = torch.tensor(first.score).logaddexp(torch.tensor(second.score) + log_probs[0, 2])
        assert abs(merged[0].score - float(expected)) < 1e-6


def test_continues_from_torchaudio_hypotheses(model, utterance):
    """torchaudio's 4-tuples can seed our infer (backward compatible)."""
    ta_search, search = torchaudio.models.RNNTBeamSearch(model, BLANK), RNNTBeamSearch(model, BLANK)
    first, second = _chunks(utterance[0])[:2]
    length = torch.tensor([CHUNK])
    with torch.no_grad():
        ta_hyps, ta_state = ta_search.infer(first, length, 5)
        # torchaudio's Emformer updates the state in place: give each search its own copy
        ours, _ = search.infer(second, length, 5, copy.deepcopy(ta_state), ta_hyps)
        expected, _ = ta_search.infer(second, length, 5, ta_state, ta_hyps)
    _assert_same(ours, expected)
    assert all(t == -1 for t in ours[0].timesteps[: len(ta_hyps[0][0])])  # unknown history


def test_hypothesis_layout(model, utterance):
    hyp = RNNTBeamSearch(model, BLANK)(*utterance, 3)[0]
    assert isinstance(hyp, Hypothesis) and isinstance(hyp, tuple)
    tokens, pred_out, state, score = hyp[:4]
    assert tokens is hyp.tokens and score == hyp.score
    assert tokens[0] == BLANK and all(0 <= t < BLANK for t in tokens[1:])
    assert pred_out.shape == (1, CFG.encoding_dim)
    assert [[tuple(s.shape) for s in layer] for layer in state] == [[(1, 16), (1, 16)]] * 2
    assert len(hyp.timesteps) == len(tokens) and hyp.timesteps[0] == -1
    assert hyp.timesteps[1:] == sorted(hyp.timesteps[1:])
    assert all(0 <= t < hyp.num_frames for t in hyp.timesteps[1:])
    assert hyp.num_frames == T_IN // CFG.time_reduction_stride


@pytest.fixture(scope="module")
def rotated_model(model):
    """``model`` with its outputs rotated by one (old j -> (j+1) % V): blank is output 0."""
    rotated = _make_ta_model()
    perm = torch.tensor([(j - 1) % V for j in range(V)])  # new index n holds old row perm[n]
    with torch.no_grad():
        rotated.joiner.linear.weight.copy_(model.joiner.linear.weight[perm])
        rotated.joiner.linear.bias.copy_(model.joiner.linear.bias[perm])
        rotated.predictor.embedding.weight.copy_(model.predictor.embedding.weight[perm])
    return rotated


def _assert_relabelled(ours, theirs):
    """Our blank=0 hypotheses on ``rotated_model`` == torchaudio's on ``model``, tokens relabelled."""
    assert [h.tokens for h in ours] == [[(t + 1) % V for t in h[0]] for h in theirs]
    for h, r in zip(ours, theirs):
        assert h.score == pytest.approx(r[3], rel=1e-5)  # log_softmax over permuted logits rounds differently


@pytest.mark.parametrize("beam_width", range(1, 9))
def test_blank_not_last_equals_relabelled_model(model, rotated_model, utterance, beam_width):
    """blank=0 on a model whose outputs are rotated by one (old j -> (j+1) % V) must give
    torchaudio's blank=V-1 result with relabelled tokens, full and streaming."""
    with torch.no_grad():
        theirs = torchaudio.models.RNNTBeamSearch(model, BLANK)(*utterance, beam_width)
    ours = RNNTBeamSearch(rotated_model, 0)(*utterance, beam_width)
    _assert_relabelled(ours, theirs)
    assert len(ours[0].tokens) > 3 and ours[0].tokens[0] == 0
    ta_search, search = torchaudio.models.RNNTBeamSearch(model, BLANK), RNNTBeamSearch(rotated_model, 0)
    ta_state = ta_hyps = state = hyps = None
    with torch.no_grad():
        for chunk in _chunks(utterance[0]):
            ta_hyps, ta_state = ta_search.infer(chunk, torch.tensor([CHUNK]), beam_width, ta_state, ta_hyps)
            hyps, state = search.infer(chunk, torch.tensor([CHUNK]), beam_width, state, hyps)
            _assert_relabelled(hyps, ta_hyps)


# --------------------------------------------------------------------------- #
# Greedy search
# --------------------------------------------------------------------------- #
def _greedy_reference(model, enc_out, blank, max_symbols):
    """Textbook one-utterance greedy RNN-T: enc_out (1, T, D) -> tokens, frames."""
    one = torch.tensor([1])
    g, _, s = model.predict(torch.tensor([[blank]]), one, None)
    tokens, frames = [], []
    for t in range(enc_out.shape[1]):
        for _ in range(max_symbols):
            k = int(model.join(enc_out[:, t : t + 1], one, g, one)[0][0, 0, 0].argmax())
            if k == blank:
                break
            tokens.append(k)
            frames.append(t)
            g, _, s = model.predict(torch.tensor([[k]]), one, s)
    return tokens, frames


@pytest.mark.parametrize("blank", [BLANK, 0])
def test_greedy_batched_matches_reference(model, blank):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, T_IN + RC, CFG.input_dim, generator=g)
    lengths = torch.tensor([T_IN, 30, 18])
    tokens, frames = greedy_decode(model, x, lengths, blank, max_symbols_per_frame=3)
    with torch.no_grad():
        enc_out, enc_len = model.transcribe(x, lengths)
        for b in range(3):
            ref = _greedy_reference(model, enc_out[b : b + 1, : enc_len[b]], blank, 3)
            assert (tokens[b], frames[b]) == ref
    assert sum(map(len, tokens)) > 5


def test_greedy_symbol_cap(model, utterance):
    """A blank that never wins: every frame emits exactly max_symbols_per_frame tokens."""
    never_blank = _make_ta_model(blank_bias=-100.0)
    tokens, frames = greedy_decode(never_blank, *utterance, BLANK, max_symbols_per_frame=2)
    n_frames = T_IN // CFG.time_reduction_stride
    assert frames[0] == [t for t in range(n_frames) for _ in range(2)]
    assert len(tokens[0]) == 2 * n_frames


def test_greedy_streaming_is_frame_synchronous(model, utterance):
    """Chunk-by-chunk greedy_infer == greedy_search on the concatenated streaming encoder output."""
    state = enc_state = dec = None
    encs = []
    with torch.no_grad():
        for chunk in _chunks(utterance[0]):
            length = torch.tensor([CHUNK])
            enc, _, enc_state = model.transcribe_streaming(chunk, length, enc_state)  # separate state chain
            encs.append(enc)
            dec, state = greedy_infer(model, chunk, length, BLANK, state, dec)
    enc = torch.cat(encs, dim=1)
    full = greedy_search(model, enc, torch.tensor([enc.shape[1]]), BLANK)
    assert dec.tokens == full.tokens and dec.timesteps == full.timesteps
    assert dec.num_frames == [enc.shape[1]] and len(dec.tokens[0]) > 3


# --------------------------------------------------------------------------- #
# Timestamps
# --------------------------------------------------------------------------- #
def test_token_timestamps():
    stamps = token_timestamps([11, 5, 7], [-1, 0, 3], time_reduction_stride=4)
    assert [s.token for s in stamps] == [5, 7]
    assert [s.input_frame for s in stamps] == [0, 12]
    assert [s.seconds for s in stamps] == pytest.approx([0.0, 0.12])
    assert token_timestamps([1], [2], 4, hop_length=320, sample_rate=16000)[0].seconds == pytest.approx(0.16)
    with pytest.raises(ValueError):
        token_timestamps([1, 2], [0], 4)


def test_token_timestamps_of_hypothesis(model, utterance):
    hyp = RNNTBeamSearch(model, BLANK)(*utterance, 2)[0]
    stamps = token_timestamps(hyp.tokens, hyp.timesteps, CFG.time_reduction_stride)
    assert len(stamps) == len(hyp.tokens) - 1
    assert all(s.input_frame == 2 * s.encoder_frame and s.seconds == s.input_frame / 100 for s in stamps)


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
def test_beam_search_errors(model, utterance):
    x, length = utterance
    search = RNNTBeamSearch(model, BLANK)
    for bad in [0, -1, 1.5]:
        with pytest.raises(ValueError, match="beam_width"):
            search(x, length, bad)
    with pytest.raises(ValueError, match="input"):
        search(x.expand(2, -1, -1), length, 2)
    with pytest.raises(ValueError, match="input"):
        search(x[0, :, 0], length, 2)
    with pytest.raises(ValueError, match="length"):
        search(x, torch.tensor([T_IN, T_IN]), 2)
    with pytest.raises(ValueError, match="blank"):
        RNNTBeamSearch(model, V)(x, length, 2)
    with pytest.raises(ValueError, match="blank"):
        RNNTBeamSearch(model, -1)
    with pytest.raises(ValueError, match="temperature"):
        RNNTBeamSearch(model, BLANK, temperature=0.0)
    with pytest.raises(ValueError, match="enc_out"):
        search.search(torch.zeros(2, 3, CFG.encoding_dim), 2)
    with pytest.raises(ValueError, match="hypothesis"):
        search.infer(_chunks(x)[0], torch.tensor([CHUNK]), 2, None, [])


def test_greedy_errors(model, utterance):
    x, length = utterance
    with pytest.raises(ValueError, match="blank"):
        greedy_decode(model, x, length, V)
    with pytest.raises(ValueError, match="input"):
        greedy_decode(model, x[0], length, BLANK)
    with pytest.raises(ValueError, match="lengths"):
        greedy_decode(model, x, torch.tensor(T_IN), BLANK)
    with pytest.raises(ValueError, match="max_symbols_per_frame"):
        greedy_decode(model, x, length, BLANK, max_symbols_per_frame=0)


# --------------------------------------------------------------------------- #
# The project's own model, holding torchaudio's weights
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def edu_model(model):
    edu = emformer_edu.emformer_rnnt_model(**dataclasses.asdict(CFG)).eval()
    edu.load_state_dict(model.state_dict(), strict=True)
    return edu


@pytest.mark.parametrize("beam_width", [1, 4, 10])
def test_edu_model_beam_search(model, edu_model, utterance, beam_width):
    with torch.no_grad():
        theirs = torchaudio.models.RNNTBeamSearch(model, BLANK)(*utterance, beam_width)
    # the edu model is bit-identical to torchaudio's, so the search is too
    _assert_same(RNNTBeamSearch(edu_model, BLANK)(*utterance, beam_width), theirs)


def test_edu_model_greedy(model, edu_model):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, T_IN + RC, CFG.input_dim, generator=g)
    lengths = torch.tensor([T_IN, 30, 18])
    assert greedy_decode(edu_model, x, lengths, BLANK) == greedy_decode(model, x, lengths, BLANK)


def test_edu_model_streaming_greedy(model, edu_model, utterance):
    results = []
    for m in (model, edu_model):
        state = dec = None
        with torch.no_grad():
            for chunk in _chunks(utterance[0]):
                dec, state = greedy_infer(m, chunk, torch.tensor([CHUNK]), BLANK, state, dec)
        results.append((dec.tokens, dec.timesteps))
    assert results[0] == results[1] and len(results[0][0][0]) > 3


# --------------------------------------------------------------------------- #
# Non-finite input is refused, with where it was found
# --------------------------------------------------------------------------- #
def _nan_message(name, kind, index):
    return rf"{name} holds 1 non-finite value\(s\) \(first: {kind} at index \({index}\)"


def _decoders(m, x, length):
    """Every decoder entry point on features ``x`` (1, T + R, F): name -> (call, name of x in its message)."""
    chunk, chunk_length = x[:, :CHUNK], torch.tensor([CHUNK])
    calls = {
        "greedy_decode": lambda: greedy_decode(m, x, length, BLANK),
        "greedy_infer": lambda: greedy_infer(m, chunk, chunk_length, BLANK),
        "decode greedy": lambda: decode(m, x, length, BLANK),
        "decode beam": lambda: decode(m, x, length, BLANK, beam_width=3),
        "decode streaming": lambda: decode(m, x, length, BLANK, streaming=True),
        "decode_streaming greedy": lambda: decode_streaming(m, x[0], BLANK),  # one utterance, (T + R, F)
        "decode_streaming beam": lambda: decode_streaming(m, x[0], BLANK, beam_width=3),
        "RNNTBeamSearch.forward": lambda: RNNTBeamSearch(m, BLANK)(x, length, 3),
        "RNNTBeamSearch.infer": lambda: RNNTBeamSearch(m, BLANK).infer(chunk, chunk_length, 3),
    }
    return {name: (call, "features" if name.startswith("decode") else "input") for name, call in calls.items()}


DECODERS = [
    "greedy_decode", "greedy_infer", "decode greedy", "decode beam", "decode streaming", "decode_streaming greedy",
    "decode_streaming beam", "RNNTBeamSearch.forward", "RNNTBeamSearch.infer",
]


@pytest.mark.parametrize("which", ["torchaudio model", "edu model"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("decoder", DECODERS)
def test_non_finite_features_are_refused(model, edu_model, utterance, decoder, value, which):
    """torchaudio's model encodes NaN without complaint: our decoders must refuse it themselves."""
    m = model if which == "torchaudio model" else edu_model
    x = utterance[0].clone()
    x[0, 5, 3] = value
    call, name = _decoders(m, x, utterance[1])[decoder]
    index = "5, 3" if decoder.startswith("decode_streaming") else "0, 5, 3"
    with pytest.raises(ValueError, match=_nan_message(name, "NaN" if value != value else "inf", index)):
        call()


def test_non_finite_features_in_a_later_chunk_are_refused(edu_model, utterance):
    """Streaming decoding checks the whole utterance before the first chunk is encoded."""
    x = utterance[0][0].clone()
    x[33, 1] = float("nan")
    for beam_width in (None, 3):
        with pytest.raises(ValueError, match=_nan_message("features", "NaN", "33, 1")):
            decode_streaming(edu_model, x, BLANK, beam_width)


@pytest.mark.parametrize("which", ["torchaudio model", "edu model"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_encoder_output_is_refused(model, edu_model, utterance, value, which):
    """Encoder output handed to the searches directly: one NaN or inf is named, by greedy and beam search."""
    m = model if which == "torchaudio model" else edu_model
    with torch.no_grad():
        enc, enc_len = m.transcribe(*utterance)
    enc = enc.clone()
    enc[0, 7, 3] = value
    message = _nan_message("enc_out", "NaN" if value != value else "inf", "0, 7, 3")
    with pytest.raises(ValueError, match=message):
        greedy_search(m, enc, enc_len, BLANK)
    with pytest.raises(ValueError, match=message):
        RNNTBeamSearch(m, BLANK).search(enc, 3)
    with torch.no_grad():  # also when continuing a stream from earlier hypotheses
        hyps = RNNTBeamSearch(m, BLANK).search(enc[:, :4], 3)
    with pytest.raises(ValueError, match=message.replace("7", "3")):
        RNNTBeamSearch(m, BLANK).search(enc[:, 4:], 3, hyps)


def test_torchaudio_encoder_output_of_nan_features_is_refused(model, utterance):
    """torchaudio's transcribe_streaming passes a NaN on into its output; the searches catch it there."""
    chunk = _chunks(utterance[0])[1].clone()
    chunk[0, 2, 5] = float("nan")
    with torch.no_grad():
        enc, enc_len, _ = model.transcribe_streaming(chunk, torch.tensor([CHUNK]), None)
    assert not torch.isfinite(enc).all()  # torchaudio did not refuse it
    with pytest.raises(ValueError, match="enc_out holds .* non-finite"):
        greedy_search(model, enc, enc_len, BLANK)
    with pytest.raises(ValueError, match="enc_out holds .* non-finite"):
        RNNTBeamSearch(model, BLANK).search(enc, 3)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_logits_are_refused(utterance, value):
    """A model with a NaN (or inf) weight: greedy would emit that token every time, beam search garbage."""
    broken = _make_ta_model()
    with torch.no_grad():
        broken.joiner.linear.bias[3] = value
    with pytest.raises(ValueError, match="joiner logits holds"):
        greedy_decode(broken, *utterance, BLANK)
    with pytest.raises(ValueError, match="joiner log-probabilities holds"):
        RNNTBeamSearch(broken, BLANK)(*utterance, 3)
