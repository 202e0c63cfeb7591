"""Features: identical to torchaudio's Emformer RNN-T pipeline, streaming identical to full."""
import json
import math

import pytest
import torch
import torchaudio
from torchaudio.pipelines.rnnt_pipeline import (
    EMFORMER_RNNT_BASE_LIBRISPEECH,
    _FunctionalModule,
    _gain,
    _GlobalStatsNormalization,
    _piecewise_linear_log,
)

from emformer_edu.data.features import (
    GAIN,
    N_MELS,
    RIGHT_PADDING,
    FeatureExtractor,
    GlobalStats,
    StreamingFeatureExtractor,
    compute_global_stats,
    num_frames,
    piecewise_linear_log,
)
from emformer_edu.data.synthetic import SpeechSynthesizer

ATOL = 1e-5



def _waveforms():
    """Speech-like audio plus noise with a near-silent stretch (every piecewise-log branch)."""
    g = torch.Generator().manual_seed(0)
    synth = SpeechSynthesizer()
    noisy = 0.3 * torch.randn(23456, generator=g)
    noisy[2000:7000] *= 1e-5
    return [synth.random_utterance(1).waveform, synth.random_utterance(2).waveform, noisy]


@pytest.fixture(scope="module")
def waveforms():
    return _waveforms()


@pytest.fixture(scope="module")
def stats(waveforms):
    return compute_global_stats(waveforms)


@pytest.fixture(scope="module")
def stats_path(stats, tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "global_stats.json"
    stats.save(path)
    return str(path)


def _torchaudio_reference(stats_path, right_padding=RIGHT_PADDING):
    """The body of RNNTBundle.get_feature_extractor, built from torchaudio's own pieces."""
    return torch.nn.Sequential(
        torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, n_mels=80, hop_length=160),
        _FunctionalModule(lambda x: x.transpose(1, 0)),
        _FunctionalModule(lambda x: _piecewise_linear_log(x * _gain)),
        _GlobalStatsNormalization(stats_path),
        _FunctionalModule(lambda x: torch.nn.functional.pad(x, (0, 0, 0, right_padding))),
    )


# ---------------------------------------------------------------------------- pieces
def test_gain_matches_torchaudio():
    assert GAIN == _gain
    assert GAIN == pytest.approx(32767.0**2)


def test_piecewise_linear_log_matches_torchaudio_including_quirk():
    x = torch.cat([torch.zeros(1), torch.logspace(-8, 8, 20001), torch.tensor([math.e, math.e**math.e])]).sort().values
    expected = _piecewise_linear_log(x.clone())
    assert torch.equal(piecewise_linear_log(x), expected)
    # The quirk: torchaudio logs (e, e**e] and then divides by e again.
    mid = torch.tensor([4.0, 10.0])
    assert torch.allclose(piecewise_linear_log(mid), torch.log(mid) / math.e)
    # The intended curve is continuous and monotonic.
    smooth = piecewise_linear_log(x, torchaudio_quirk=False)
    assert bool((smooth[1:] >= smooth[:-1]).all())
    assert torch.allclose(smooth[x > math.e], torch.log(x[x > math.e]))


def test_piecewise_linear_log_does_not_modify_input():
    x = torch.tensor([0.5, 5.0, 50.0])
    piecewise_linear_log(x)
    assert torch.equal(x, torch.tensor([0.5, 5.0, 50.0]))


def test_num_frames():
    assert [num_frames(n) for n in (201, 319, 320, 16000)] == [2, 2, 3, 101]


# ---------------------------------------------------------------------------- full extractor
def test_matches_torchaudio_reference(waveforms, stats_path):
    ours = FeatureExtractor(stats_path)
    ref = _torchaudio_reference(stats_path)
    for w in waveforms:
        feats, length = ours(w)
        expected = ref(w.clone())
        assert feats.shape == expected.shape == (num_frames(w.numel()) + RIGHT_PADDING, N_MELS)
        assert torch.allclose(feats, expected, atol=ATOL, rtol=0)
        assert length.tolist() == [expected.size(0)]


def test_test_audio_reaches_every_piecewise_log_branch(waveforms):
    scaled = torch.cat([FeatureExtractor().mel(w).flatten() * GAIN for w in waveforms])
    assert bool((scaled <= math.e).any())
    assert bool(((scaled > math.e) & (scaled <= math.e**math.e)).any())
    assert bool((scaled > math.e**math.e).any())


def test_matches_torchaudio_bundle_feature_extractor(waveforms, stats_path, monkeypatch):
    # The bundle downloads its stats file; point that download at ours (no network).
    monkeypatch.setattr(torchaudio.utils, "_download_asset", lambda *args, **kwargs: stats_path)
    bundle_fe = EMFORMER_RNNT_BASE_LIBRISPEECH.get_feature_extractor()
    ours = FeatureExtractor(stats_path)
    for w in waveforms:
        feats, length = ours(w)
        ref_feats, ref_length = bundle_fe(w.clone())
        assert torch.allclose(feats, ref_feats, atol=ATOL, rtol=0)
        assert torch.equal(length, ref_length)


@pytest.mark.parametrize("right_padding", [0, 1, 4, 7])
def test_right_padding_parameter(waveforms, stats_path, right_padding):
    w = waveforms[0]
    feats, length = FeatureExtractor(stats_path, right_padding=right_padding)(w)
    expected = _torchaudio_reference(stats_path, right_padding)(w.clone())
    assert torch.allclose(feats, expected, atol=ATOL, rtol=0)
    assert int(length) == num_frames(w.numel()) + right_padding
    if right_padding:
        assert torch.equal(feats[-right_padding:], torch.zeros(right_padding, N_MELS))


def test_default_right_padding_is_the_pipelines():
    assert RIGHT_PADDING == EMFORMER_RNNT_BASE_LIBRISPEECH._right_padding == EMFORMER_RNNT_BASE_LIBRISPEECH.right_context_length
    assert FeatureExtractor().right_padding == 4


def test_accepts_channel_dimension_of_one(waveforms):
    fe = FeatureExtractor()
    w = waveforms[0]
    assert torch.equal(fe(w.unsqueeze(0))[0], fe(w)[0])


def test_batch_matches_single_utterances(waveforms, stats):
    fe = FeatureExtractor(stats)
    feats, lengths = fe.batch(waveforms)
    assert lengths.dtype == torch.int32
    assert lengths.tolist() == [num_frames(w.numel()) for w in waveforms]
    assert feats.shape == (len(waveforms), int(lengths.max()) + RIGHT_PADDING, N_MELS)
    for b, w in enumerate(waveforms):
        t = int(lengths[b])
        assert torch.equal(feats[b, :t], fe.features(w))
        assert torch.equal(feats[b, t:], torch.zeros(feats.size(1) - t, N_MELS))


# ---------------------------------------------------------------------------- statistics
def test_stats_json_has_torchaudio_layout(stats, stats_path):
    with open(stats_path) as f:
        blob = json.load(f)
    assert set(blob) == {"mean", "invstddev"}
    assert len(blob["mean"]) == len(blob["invstddev"]) == N_MELS
    norm = _GlobalStatsNormalization(stats_path)
    assert torch.equal(norm.mean, stats.mean)
    assert torch.equal(norm.invstddev, stats.invstddev)
    loaded = GlobalStats.load(stats_path)
    assert torch.equal(loaded.mean, stats.mean) and torch.equal(loaded.invstddev, stats.invstddev)


def test_stats_from_waveforms_equal_stats_from_features(waveforms, stats):
    fe = FeatureExtractor()
    from_feats = compute_global_stats([fe.log_mel(w) for w in waveforms])
    assert torch.allclose(from_feats.mean, stats.mean, atol=1e-6)
    assert torch.allclose(from_feats.invstddev, stats.invstddev, rtol=1e-5)


def test_fit_normalizes_the_corpus(waveforms):
    fe = FeatureExtractor()
    fe.fit(waveforms)
    all_feats = torch.cat([fe.features(w) for w in waveforms]).double()
    assert torch.allclose(all_feats.mean(0), torch.zeros(N_MELS, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(all_feats.std(0, unbiased=False), torch.ones(N_MELS, dtype=torch.float64), atol=1e-4)


def test_stats_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        compute_global_stats([])
    with pytest.raises(ValueError, match="kind"):
        compute_global_stats([torch.zeros(1000)], kind="spectrogram")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mean": [0.0] * 80}))
    with pytest.raises(ValueError, match="invstddev"):
        GlobalStats.load(bad)


# ---------------------------------------------------------------------------- streaming
def _stream(streamer, waveform, sizes):
    outs, pos, i = [], 0, 0
    while pos < waveform.numel():
        n = sizes[i % len(sizes)]
        outs.append(streamer(waveform[pos : pos + n]))
        pos, i = pos + n, i + 1
    outs.append(streamer.flush())
    return outs


@pytest.mark.parametrize("chunk", [160, 1000, 1234, 37, 200, 201, 10**6])
def test_streaming_equals_full_utterance(waveforms, stats, chunk):
    fe = FeatureExtractor(stats)
    streamer = fe.streaming()
    for w in waveforms:
        streamer.reset()
        got = torch.cat(_stream(streamer, w, [chunk]))
        assert torch.allclose(got, fe(w)[0], atol=ATOL, rtol=0)


def test_streaming_with_irregular_chunks_including_empty(waveforms, stats):
    fe = FeatureExtractor(stats)
    w = waveforms[0]
    got = torch.cat(_stream(StreamingFeatureExtractor(fe), w, [0, 3, 500, 0, 161, 2047, 1]))
    assert torch.allclose(got, fe(w)[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("num_samples", [201, 202, 360, 361, 3200, 3201, 3359])
def test_streaming_edge_lengths(num_samples):
    g = torch.Generator().manual_seed(num_samples)
    w = 0.1 * torch.randn(num_samples, generator=g)
    fe = FeatureExtractor()
    got = torch.cat(_stream(fe.streaming(), w, [57]))
    assert torch.allclose(got, fe(w)[0], atol=ATOL, rtol=0)


def test_streaming_contract_which_frames_come_when(waveforms):
    """Frame t is out once 160 t + 200 <= N_seen; the rest come only from flush()."""
    w = waveforms[2]
    streamer = StreamingFeatureExtractor()
    assert streamer(w[:200]).shape == (0, N_MELS)  # left reflect pad needs sample 200
    seen, emitted = 200, 0
    for n in (1, 159, 1000, 37, 4000):
        emitted += streamer(w[seen : seen + n]).size(0)
        seen += n
        assert emitted == streamer.frames_emitted == (seen - 200) // 160 + 1
    tail = streamer.flush()
    assert emitted + tail.size(0) == num_frames(seen) + RIGHT_PADDING
    assert torch.equal(tail[-RIGHT_PADDING:], torch.zeros(RIGHT_PADDING, N_MELS))


def test_streaming_cache_stays_small(waveforms):
    streamer = StreamingFeatureExtractor()
    for start in range(0, 20000, 1000):
        streamer(waveforms[2][start : start + 1000])
        assert streamer._buffer.numel() <= 400 + 160  # at most one window + one hop between calls


# ---------------------------------------------------------------------------- bad input
def test_rejects_wrong_sample_rate(waveforms):
    with pytest.raises(ValueError, match="sample_rate must be 16000"):
        FeatureExtractor(sample_rate=8000)
    fe = FeatureExtractor()
    with pytest.raises(ValueError, match="sample_rate must be 16000.*got 44100"):
        fe(waveforms[0], sample_rate=44100)
    with pytest.raises(ValueError, match="sample_rate must be 16000"):
        fe.streaming()(waveforms[0][:1000], sample_rate=22050)
    assert fe(waveforms[0], sample_rate=16000)[0].size(1) == N_MELS


@pytest.mark.parametrize("shape", [(2, 4000), (4000, 2), (1, 1, 4000)])
def test_rejects_stereo_and_bad_shapes(shape):
    fe = FeatureExtractor()
    with pytest.raises(ValueError, match="mono|shape"):
        fe(torch.zeros(shape))
    with pytest.raises(ValueError, match="mono|shape"):
        fe.streaming()(torch.zeros(shape))


def test_stereo_message_says_mono():
    with pytest.raises(ValueError, match="must be mono.*2 channels"):
        FeatureExtractor()(torch.zeros(2, 4000))


def test_rejects_empty_and_too_short_audio():
    fe = FeatureExtractor()
    with pytest.raises(ValueError, match="empty"):
        fe(torch.zeros(0))
    with pytest.raises(ValueError, match="empty"):
        fe(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="too short"):
        fe(torch.zeros(200))
    streamer = fe.streaming()
    assert streamer(torch.zeros(0)).shape == (0, N_MELS)  # an empty chunk is fine mid-stream
    with pytest.raises(ValueError, match="empty"):
        streamer.flush()
    streamer(torch.zeros(150))
    with pytest.raises(ValueError, match="too short"):
        streamer.flush()


def test_rejects_integer_pcm():
    with pytest.raises(ValueError, match="float"):
        FeatureExtractor()(torch.zeros(4000, dtype=torch.int16))


def test_streaming_after_flush_needs_reset(waveforms):
    streamer = StreamingFeatureExtractor()
    streamer(waveforms[0])
    streamer.flush()
    with pytest.raises(ValueError, match="reset"):
        streamer(waveforms[0][:100])
    streamer.reset()
    assert streamer(waveforms[0][:1000]).size(0) > 0


# ---------------------------------------------------------------------------- non-finite input
def _with_bad_sample(num_samples, index, value):
    w = 0.1 * torch.randn(num_samples, generator=torch.Generator().manual_seed(index))
    w[index] = value
    return w


@pytest.mark.parametrize("value, kind", [(math.nan, "NaN"), (math.inf, r"\+inf"), (-math.inf, "-inf")])
def test_forward_refuses_non_finite_audio_and_names_the_sample(value, kind):
    w = _with_bad_sample(16000, 4321, value)
    with pytest.raises(ValueError, match=rf"waveform must hold only finite samples.*{kind} at sample 4321 \(0.2701 s"):
        FeatureExtractor()(w)


def test_forward_refuses_non_finite_audio_with_channel_dimension():
    # The index is the sample index, not an index into the (1, N) tensor.
    with pytest.raises(ValueError, match="NaN at sample 999 "):
        FeatureExtractor()(_with_bad_sample(4000, 999, math.nan).unsqueeze(0))


def test_features_refuses_non_finite_audio():
    with pytest.raises(ValueError, match="waveform must hold only finite.*NaN at sample 10 "):
        FeatureExtractor().features(_with_bad_sample(4000, 10, math.nan))


def test_log_mel_refuses_non_finite_audio_and_counts_them():
    w = _with_bad_sample(4000, 3000, math.inf)
    w[3500] = math.nan
    with pytest.raises(ValueError, match=r"got 2 NaN/inf of 4000: the first is \+inf at sample 3000 "):
        FeatureExtractor().log_mel(w)


def test_batch_refuses_non_finite_audio_and_names_the_utterance(waveforms):
    bad = _with_bad_sample(5000, 77, math.nan)
    with pytest.raises(ValueError, match=r"waveforms\[2\] must hold only finite samples.*NaN at sample 77 "):
        FeatureExtractor().batch([waveforms[0], waveforms[1], bad])


def test_batch_names_a_too_short_utterance(waveforms):
    with pytest.raises(ValueError, match=r"waveforms\[1\] too short"):
        FeatureExtractor().batch([waveforms[0], torch.zeros(100)])


def test_compute_global_stats_refuses_non_finite_waveform_and_names_the_item(waveforms):
    with pytest.raises(ValueError, match=r"corpus item 1 must hold only finite samples.*-inf at sample 12 "):
        compute_global_stats([waveforms[0], _with_bad_sample(3000, 12, -math.inf)])


def test_compute_global_stats_refuses_non_finite_features_and_names_the_item():
    feats = torch.zeros(10, N_MELS)
    feats[3, 7] = math.nan
    with pytest.raises(ValueError, match=r"corpus item 0 \(log-mel features.*NaN at index \(3, 7\)"):
        compute_global_stats([feats, torch.ones(10, N_MELS)])


def test_fit_refuses_non_finite_audio_and_keeps_its_stats(waveforms):
    fe = FeatureExtractor()
    with pytest.raises(ValueError, match="corpus item 0 must hold only finite"):
        fe.fit([_with_bad_sample(3000, 5, math.nan)])
    assert torch.equal(fe.mean, torch.zeros(N_MELS)) and torch.equal(fe.invstddev, torch.ones(N_MELS))


@pytest.mark.parametrize("value, kind", [(math.nan, "NaN"), (math.inf, r"\+inf")])
def test_streaming_refuses_non_finite_chunk_and_names_both_positions(waveforms, stats, value, kind):
    fe = FeatureExtractor(stats)
    w = waveforms[0]
    streamer = fe.streaming()
    first = streamer(w[:5000])
    bad = w[5000:6000].clone()
    bad[7] = value
    with pytest.raises(ValueError, match=rf"chunk must hold only finite.*{kind} at sample 7 of the chunk "
                                         rf"\(sample 5007 of the stream, 0.3129 s"):
        streamer(bad)
    # The refused chunk left the stream untouched: feeding the clean audio continues it exactly.
    assert streamer.num_samples == 5000
    got = torch.cat([first, streamer(w[5000:]), streamer.flush()])
    assert torch.allclose(got, fe(w)[0], atol=ATOL, rtol=0)


def test_streaming_refuses_non_finite_first_chunk():
    with pytest.raises(ValueError, match="NaN at sample 3 of the chunk \\(sample 3 of the stream"):
        StreamingFeatureExtractor()(_with_bad_sample(100, 3, math.nan))


def test_rejects_finite_audio_whose_mel_power_overflows():
    with pytest.raises(ValueError, match=r"waveform must be audio in \[-1, 1\], got peak \|x\| = 1e\+30.*overflows"):
        FeatureExtractor()(torch.full((4000,), 1e30))
    with pytest.raises(ValueError, match=r"waveforms\[0\] must be audio in \[-1, 1\].*overflows"):
        FeatureExtractor().batch([torch.full((4000,), 1e30)])


def test_rejects_float64_audio_that_overflows_float32():
    w = torch.zeros(4000, dtype=torch.float64)
    w[100] = 1e300
    with pytest.raises(ValueError, match=r"peak \|x\| = 1e\+300 \(torch.float64\), which overflows.*float32"):
        FeatureExtractor()(w)


# ---------------------------------------------------------------------------- bad statistics
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_global_stats_refuse_bad_invstddev(value):
    inv = torch.ones(N_MELS)
    inv[5] = value
    with pytest.raises(ValueError, match=rf"invstddev must be a finite number in \(0, inf\).*got {value} at bin 5"):
        GlobalStats(torch.zeros(N_MELS), inv)


@pytest.mark.parametrize("value", [math.nan, -math.inf])
def test_global_stats_refuse_non_finite_mean(value):
    mean = torch.zeros(N_MELS)
    mean[9] = value
    with pytest.raises(ValueError, match=rf"mean must be a finite number.*got {value} at bin 9"):
        GlobalStats(mean, torch.ones(N_MELS))


def test_global_stats_refuse_invstddev_that_overflows_float32():
    with pytest.raises(ValueError, match="invstddev .* got inf at bin 0"):
        GlobalStats(torch.zeros(N_MELS, dtype=torch.float64), torch.full((N_MELS,), 1e300, dtype=torch.float64))


def test_global_stats_load_names_the_file(tmp_path):
    bad = tmp_path / "zero_std.json"
    bad.write_text(json.dumps({"mean": [0.0] * N_MELS, "invstddev": [1.0] * (N_MELS - 1) + [0.0]}))
    with pytest.raises(ValueError, match=r"zero_std\.json: invstddev .* got 0.0 at bin 79"):
        GlobalStats.load(bad)
    with pytest.raises(ValueError, match=r"zero_std\.json: invstddev"):
        FeatureExtractor(str(bad))


def test_set_global_stats_refuses_wrong_size():
    fe = FeatureExtractor()
    with pytest.raises(ValueError, match="80 values"):
        fe.set_global_stats(GlobalStats([0.0], [1.0]))  # copy_ would broadcast it silently
    assert torch.equal(fe.invstddev, torch.ones(N_MELS))
