"""Evaluation helpers: edit distance / TER / CER / WER, streaming chunks, streaming decoding, emission delays."""
import dataclasses
import math

import pytest
import torch

import emformer_edu
from emformer_edu.rnnt.greedy import greedy_decode
from emformer_edu.rnnt.recognize import decode, decode_streaming
from emformer_edu.train.latency import EmissionDelays, emission_delays
from emformer_edu.train.metrics import (
    TERResult, character_error_rate, edit_distance, evaluate, token_error_rate, word_error_rate,
)
from emformer_edu.transducer.streaming import streaming_chunks
from emformer_edu.data.features import FeatureExtractor
from emformer_edu.data.corpus import Alignment, Vocabulary
from emformer_edu.data.synthetic import SyntheticSpeechDataset



def tiny_model(seed=0, dtype=torch.float64, segment_length=8, stride=4):
    """A small untrained streaming model (memory, left and right context) with 80 mel inputs."""
    torch.manual_seed(seed)
    cfg = emformer_edu.EmformerRNNTConfig.tiny(num_symbols=21).replace(
        input_dim=80, encoding_dim=24, segment_length=segment_length, time_reduction_stride=stride,
        transformer_ffn_dim=32, transformer_activation="relu", transformer_left_context_length=3,
        symbol_embedding_dim=16, num_lstm_layers=1)
    return emformer_edu.emformer_rnnt_model(**dataclasses.asdict(cfg)).to(dtype).eval()


# ----------------------------------------------------------------------------- TER
@pytest.mark.parametrize("ref, hyp, expected", [
    ([], [], 0),
    ([1, 2, 3], [1, 2, 3], 0),
    ([1, 2, 3], [], 3),  # three deletions
    ([], [4, 5], 2),  # two insertions
    ([1, 2, 3], [1, 9, 3], 1),  # one substitution
    ([1, 2, 3, 4], [2, 3, 4, 5], 2),  # delete the first, insert at the end (not 4 substitutions)
    ("kitten", "sitting", 3),
])
def test_edit_distance(ref, hyp, expected):
    assert edit_distance(ref, hyp) == expected
    assert edit_distance(hyp, ref) == expected  # symmetric


def test_edit_distance_accepts_tensors():
    assert edit_distance(torch.tensor([1, 2, 3]), [1, 3]) == 1


def test_token_error_rate_weights_every_reference_token_equally():
    refs = [[1, 2, 3, 4], [5, 6]]
    hyps = [[1, 2, 3, 4], [5]]
    assert token_error_rate(refs, hyps) == pytest.approx(1 / 6)  # not the mean of 0 and 1/2
    with pytest.raises(ValueError, match="same length"):
        token_error_rate(refs, hyps[:1])
    with pytest.raises(ValueError, match="no tokens"):
        token_error_rate([[]], [[1]])



# ----------------------------------------------------------------------------- CER and WER
def test_character_error_rate_counts_every_character_spaces_included():
    assert character_error_rate(["seven three"], ["seven three"]) == 0
    assert character_error_rate(["seven three"], ["seven tree"]) == pytest.approx(1 / 11)  # one deletion
    assert character_error_rate(["seven three"], ["seventhree"]) == pytest.approx(1 / 11)  # the space is a character
    assert character_error_rate(["go", "stop now"], ["no", "stop now"]) == pytest.approx(1 / 10)  # summed, then divided
    assert character_error_rate(["yes"], [""]) == 1 and character_error_rate(["no"], ["no no no"]) == 3


def test_word_error_rate_counts_words():
    assert word_error_rate(["seven three nine"], ["seven three nine"]) == 0
    assert word_error_rate(["seven three nine"], ["seven tree nine"]) == pytest.approx(1 / 3)  # one wrong letter
    assert word_error_rate(["seven three nine"], ["seventhree nine"]) == pytest.approx(2 / 3)  # merged: sub + del
    assert word_error_rate(["seven three nine"], ["seven three nine nine"]) == pytest.approx(1 / 3)  # insertion
    assert word_error_rate(["go now", "stop"], ["go", "stop"]) == pytest.approx(1 / 3)  # corpus-level
    assert word_error_rate(["a  b"], [" a b "]) == 0  # words are text.split(): extra spaces do not count
    with pytest.raises(ValueError, match="same length"):
        word_error_rate(["a"], [])
    with pytest.raises(ValueError, match="no tokens"):
        word_error_rate([""], ["a"])


def test_ter_result_gives_cer_and_wer_only_with_texts():
    plain = TERResult([[0, 1]], [[0]], [[0]], 1, 2)
    assert plain.cer is None and plain.wer is None and "cer" not in repr(plain)
    texts = TERResult([[0, 1]], [[0]], [[0]], 1, 2, ref_texts=["ab cd"], hyp_texts=["ab"])
    assert texts.cer == pytest.approx(3 / 5) and texts.wer == pytest.approx(1 / 2)
    assert "cer=60.00%" in repr(texts) and "wer=50.00%" in repr(texts)


def test_evaluate_with_a_vocabulary_writes_texts():
    data = SyntheticSpeechDataset(3, seed=0)
    utts = [data[i] for i in range(3)]
    model = tiny_model(dtype=torch.float32)
    extractor = FeatureExtractor(right_padding=model.transcriber.right_context_length)
    vocab = Vocabulary.letters(20)
    result = evaluate(model, utts, extractor, blank=20, vocab=vocab)
    assert result.ref_texts == [u.text for u in utts]
    assert result.hyp_texts == [vocab.decode(h) for h in result.hyps]
    assert result.cer == pytest.approx(result.ter)  # one character per token
    assert evaluate(model, utts, extractor, blank=20).ref_texts is None  # no vocabulary: no texts


# ----------------------------------------------------------------------------- chunks
@pytest.mark.parametrize("T", [1, 15, 16, 17, 40])
def test_streaming_chunks_cover_the_utterance(T):
    seg, R, F = 16, 4, 3
    feats = torch.randn(T + R, F)
    chunks = streaming_chunks(feats, seg, R)
    assert len(chunks) == math.ceil(T / seg)
    for i, (chunk, length) in enumerate(chunks):
        assert chunk.shape == (1, seg + R, F)
        valid = min(seg + R, T + R - i * seg)
        assert length.tolist() == [valid]
        assert torch.equal(chunk[0, :valid], feats[i * seg : i * seg + valid])
        assert not chunk[0, valid:].any()  # zero padding
    # The segments (without look-ahead) tile the real frames exactly once.
    tiled = torch.cat([c[0, : min(seg, T - i * seg)] for i, (c, _) in enumerate(chunks)])
    assert torch.equal(tiled, feats[:T])


def test_streaming_chunks_errors():
    with pytest.raises(ValueError, match="no real frames"):
        streaming_chunks(torch.zeros(4, 80), 16, 4)
    with pytest.raises(ValueError, match=r"shape \(T \+ R, F\) or \(B, T \+ R, F\)"):
        streaming_chunks(torch.zeros(1, 2, 30, 80), 16, 4)
    with pytest.raises(ValueError, match=r"lengths must be \(B,\)"):
        streaming_chunks(torch.zeros(2, 30, 80), 16, 4, lengths=torch.tensor([27, 5]))


def test_streaming_chunks_of_a_batch_cover_every_frame_of_each_utterance():
    """Batch chunks: each utterance's frames appear in order, its tail included; lengths stop at its end."""
    x = torch.arange(2 * 41 * 1, dtype=torch.float32).view(2, 41, 1)  # T = 37 real frames + R = 4
    chunks = streaming_chunks(x, 16, 4, lengths=torch.tensor([37, 20]))
    assert len(chunks) == 3  # ceil(37 / 16): the 5-frame tail gets its own chunk
    assert [c.tolist() for _, c in chunks] == [[20, 20], [20, 8], [9, 0]]
    for i, (chunk, _) in enumerate(chunks):
        assert chunk.shape == (2, 20, 1)
        real = min(20, 41 - 16 * i)
        assert torch.equal(chunk[:, :real], x[:, 16 * i: 16 * i + real])


# ----------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("index", [0, 1])
def test_streaming_greedy_equals_full_context_when_segments_are_full(index):
    """Chunk-by-chunk decoding reproduces full-context decoding (float64). Utterances are cut
    to a whole number of segments: torchaudio's single-utterance streaming does not mask the
    zero padding of a partial last chunk, so there the last few frames may differ."""
    model = tiny_model()
    utt = SyntheticSpeechDataset(2, seed=7)[index]
    fe = FeatureExtractor(right_padding=4)
    feats = fe(utt.waveform)[0].double()
    T = (feats.size(0) - 4) // 8 * 8
    feats = torch.cat([feats[:T], feats[-4:]])
    tokens, timesteps = greedy_decode(model, feats[None], torch.tensor([T]), blank=20)
    s_tokens, s_timesteps = decode_streaming(model, feats, blank=20)
    assert len(tokens[0]) > 0  # an untrained model emits plenty: a real comparison
    assert s_tokens == tokens[0] and s_timesteps == timesteps[0]
    b_tokens, b_timesteps = decode_streaming(model, feats, blank=20, beam_width=2)
    full = decode(model, feats[None], torch.tensor([T]), blank=20, beam_width=2)
    assert (b_tokens, b_timesteps) == (full[0][0], full[1][0])


def test_evaluate_checks_right_padding_and_restores_mode():
    model = tiny_model(dtype=torch.float32).train()
    data = SyntheticSpeechDataset(3, seed=3)
    utts = [data[i] for i in range(3)]
    with pytest.raises(ValueError, match="right_padding=4"):
        evaluate(model, utts, FeatureExtractor(right_padding=2), blank=20)
    result = evaluate(model, utts, FeatureExtractor(right_padding=4), blank=20, batch_size=2)
    assert model.training
    assert result.ref_tokens == sum(len(u.tokens) for u in utts)
    assert result.ter == result.errors / result.ref_tokens
    assert len(result.hyps) == len(result.timesteps) == 3
    assert "TERResult(ter=" in repr(result)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("batch_size", [64, 2])
def test_evaluate_names_a_non_finite_utterance_instead_of_a_wild_ter(bad, batch_size):
    """One corrupt utterance must not turn into a TER of thousands of percent: a ValueError names it."""
    model = tiny_model(dtype=torch.float32)
    data = SyntheticSpeechDataset(3, seed=3)
    utts = [data[i] for i in range(3)]
    waveform = utts[2].waveform.clone()
    waveform[100] = bad
    utts[2] = dataclasses.replace(utts[2], waveform=waveform)
    with pytest.raises(ValueError, match="utterance 2 waveform") as err:
        evaluate(model, utts, FeatureExtractor(right_padding=4), blank=20, batch_size=batch_size)
    assert ("NaN" if math.isnan(bad) else "inf") in str(err.value)


def test_evaluate_gives_the_utterance_index_when_the_extractor_refuses_one():
    """Audio far outside [-1, 1] overflows the spectrogram; the extractor counts per batch, evaluate adds the offset."""
    model = tiny_model(dtype=torch.float32)
    data = SyntheticSpeechDataset(3, seed=3)
    utts = [data[i] for i in range(3)]
    utts[2] = dataclasses.replace(utts[2], waveform=utts[2].waveform * 1e30)
    with pytest.raises(ValueError, match=r"utterances 2 to 2 \(item k is utterance 2 \+ k\)"):
        evaluate(model, utts, FeatureExtractor(right_padding=4), blank=20, batch_size=2)


def test_evaluate_refuses_references_without_tokens():
    model = tiny_model(dtype=torch.float32)
    with pytest.raises(ValueError, match="no tokens"):
        evaluate(model, [], FeatureExtractor(right_padding=4), blank=20)


# ----------------------------------------------------------------------------- delays
def _alignment(frames):
    start = torch.tensor([s for s, _ in frames]) * 160
    end = torch.tensor([e for _, e in frames]) * 160
    return Alignment(start, end)


def test_emission_delays_by_hand():
    # stride 4: encoder frame k covers input frames [4k, 4k + 4).
    al = _alignment([(10, 20), (20, 27)])
    d = emission_delays([[4, 6]], [al], stride=4)
    # token 0 at frame 4 = [16, 20): start 16 - 10 = 6, end 20 - 20 = 0, inside.
    # token 1 at frame 6 = [24, 28): start 24 - 20 = 4, end 28 - 27 = 1, inside.
    assert d.start_delay.tolist() == [6.0, 4.0]
    assert d.end_delay.tolist() == [0.0, 1.0]
    assert d.inside.tolist() == [True, True]
    assert d.mean_start_delay_frames == 5.0 and d.mean_start_delay_ms == pytest.approx(50.0)
    assert d.mean_end_delay_ms == pytest.approx(5.0)
    assert d.fraction_inside == 1.0
    assert d.latency is None and math.isnan(d.mean_latency_ms)
    # Streaming geometry: segments of 16 input frames + 4 look-ahead. Both tokens are emitted in
    # segment 1 (frames [16, 32)), known once frames up to 32 + 4 = 36 have arrived.
    s = emission_delays([[4, 6]], [al], stride=4, segment_length=16, right_context_length=4)
    assert s.latency.tolist() == [36.0 - 20, 36.0 - 27]
    assert s.mean_latency_ms == pytest.approx(125.0) and "streaming latency" in s.summary()
    # An emission one encoder frame after the span is outside it.
    late = emission_delays([[5, 7]], [al], stride=4)
    assert late.inside.tolist() == [False, False]
    assert "2 tokens in 1 utterances" in late.summary()


def test_emission_delays_skips_wrong_hypotheses_and_checks_counts():
    al = _alignment([(0, 8), (8, 16)])
    d = emission_delays([[1, 3], [0]], [al, al], stride=4, hyps=[[1, 2], [1]], refs=[[1, 2], [1, 2]])
    assert d.skipped == 1 and d.num_tokens == 2 and d.num_utterances == 2
    none = emission_delays([[0]], [al], stride=4, hyps=[[1]], refs=[[1, 2]])
    assert none.num_tokens == 0 and "none of the 1 utterances was recognized exactly" in none.summary()
    with pytest.raises(ValueError, match="1 emission frames for 2 true tokens"):
        emission_delays([[0]], [al], stride=4)
    with pytest.raises(ValueError, match="both segment_length and right_context_length"):
        emission_delays([[0, 1]], [al], stride=4, segment_length=16)
    with pytest.raises(ValueError, match="both hyps and refs"):
        emission_delays([[0, 1]], [al], stride=4, hyps=[[1, 2]])
    empty = EmissionDelays(torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.bool), 4, 0)
    assert math.isnan(empty.mean_end_delay_ms)
