"""Synthetic corpus: deterministic, well-aligned, within its configured ranges, learnable."""
import math

import pytest
import torch
import torchaudio

from emformer_edu.data.features import HOP_LENGTH, N_MELS, RIGHT_PADDING, FeatureExtractor, num_frames
from emformer_edu.data.corpus import Collate, Vocabulary, collate
from emformer_edu.data.synthetic import SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset
from emformer_edu.data.synthetic_config import F0_HZ_LIMITS, FORMANT_SCALE_LIMITS, Speaker

SR = 16000


@pytest.fixture(scope="module")
def dataset():
    return SyntheticSpeechDataset(200, seed=0)


@pytest.fixture(scope="module")
def items(dataset):
    return [dataset[i] for i in range(len(dataset))]


# ---------------------------------------------------------------------------- vocabulary
def test_vocabulary_blank_is_last():
    vocab = Vocabulary.letters(20)
    assert vocab.num_tokens == 20 and vocab.num_symbols == len(vocab) == 21
    assert vocab.blank == vocab.num_symbols - 1 == 20
    assert vocab.tokens[:3] == ("a", "b", "c") and vocab.name(vocab.blank) == "<blank>"
    assert vocab.encode("cab") == [2, 0, 1]
    assert vocab.decode([2, 20, 0, 1, 20]) == "cab"
    with pytest.raises(ValueError, match="unknown token"):
        vocab.encode("a?")


def test_dataset_vocabulary_follows_config():
    ds = SyntheticSpeechDataset(5, config=SyntheticConfig(num_tokens=12))
    assert ds.vocab.num_tokens == 12 and ds.vocab.blank == 12
    assert all(int(ds[i].tokens.max()) < 12 for i in range(5))


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_audio_bit_for_bit(dataset):
    again = SyntheticSpeechDataset(200, seed=0)
    for i in (0, 7, 199):
        a, b = dataset[i], again[i]
        assert torch.equal(a.waveform, b.waveform)
        assert torch.equal(a.tokens, b.tokens)
        assert torch.equal(a.alignment.start_sample, b.alignment.start_sample)
        assert torch.equal(a.alignment.end_sample, b.alignment.end_sample)
    # Order does not matter: item i is seeded by (seed, i) alone.
    assert torch.equal(SyntheticSpeechDataset(200, seed=0)[42].waveform, dataset[42].waveform)


def test_different_seed_or_index_different_audio(dataset):
    other = SyntheticSpeechDataset(200, seed=1)
    assert not torch.equal(dataset[0].waveform[:1000], other[0].waveform[:1000])
    assert not torch.equal(dataset[0].waveform[:1000], dataset[1].waveform[:1000])
    synth = SpeechSynthesizer()
    assert not torch.equal(synth.render([1, 2, 3], seed=0).waveform, synth.render([1, 2, 3], seed=1).waveform)
    assert torch.equal(synth.render([1, 2, 3], seed=5).waveform, synth.render([1, 2, 3], seed=5).waveform)


def test_signature_seed_changes_the_language():
    a = SpeechSynthesizer(SyntheticConfig(signature_seed=0)).signatures
    b = SpeechSynthesizer(SyntheticConfig(signature_seed=1)).signatures
    assert a == SpeechSynthesizer(SyntheticConfig(signature_seed=0)).signatures
    assert a != b


# ---------------------------------------------------------------------------- audio and alignment
def test_waveform_format(items):
    for u in items[:20]:
        assert u.waveform.dtype == torch.float32 and u.waveform.dim() == 1
        assert u.sample_rate == SR
        assert 0 < float(u.waveform.abs().max()) <= 1.0
        assert bool(torch.isfinite(u.waveform).all())


def test_alignments_inside_ordered_non_overlapping(items):
    for u in items:
        al = u.alignment
        n = u.waveform.numel()
        assert len(al) == u.tokens.numel() >= 1
        assert al.start_sample.dtype == al.end_sample.dtype == torch.int64
        assert bool((al.start_sample < al.end_sample).all())
        assert int(al.start_sample[0]) > 0 and int(al.end_sample[-1]) < n  # edge silence
        assert bool((al.start_sample[1:] >= al.end_sample[:-1]).all())
        # Frames: frame = sample // 160, half-open, inside the feature sequence, no overlap.
        assert torch.equal(al.start_frame, al.start_sample // HOP_LENGTH)
        assert torch.equal(al.end_frame, al.end_sample // HOP_LENGTH)
        assert bool((al.start_frame < al.end_frame).all())
        assert bool((al.start_frame[1:] >= al.end_frame[:-1]).all())
        assert int(al.end_frame[-1]) < num_frames(n)


def test_tokens_and_text(items, dataset):
    for u in items:
        assert u.tokens.dtype == torch.int32
        assert dataset.vocab.decode(u.tokens) == u.text
        assert bool((u.tokens[1:] != u.tokens[:-1]).all())  # allow_repeats=False by default
        assert 0 <= int(u.tokens.min()) and int(u.tokens.max()) < dataset.vocab.blank


def test_statistics_within_configured_ranges(items, dataset):
    cfg = dataset.config
    lo, hi = cfg.token_duration_bounds_s
    durations = torch.cat([(u.alignment.end_sample - u.alignment.start_sample) for u in items]).double() / SR
    half_sample = 0.5 / SR  # durations are rounded to whole samples
    assert lo - half_sample <= float(durations.min()) and float(durations.max()) <= hi + half_sample
    assert float(durations.mean()) == pytest.approx(cfg.expected_token_duration_s, rel=0.05)
    # Both ends of the range are actually visited.
    assert float(durations.min()) < lo + 0.2 * (hi - lo) and float(durations.max()) > hi - 0.2 * (hi - lo)

    counts = torch.tensor([u.tokens.numel() for u in items])
    assert int(counts.min()) == cfg.tokens_per_utterance[0] and int(counts.max()) == cfg.tokens_per_utterance[1]

    gap_hi = cfg.gap_s[1] / cfg.speaking_rate[0]
    gaps = torch.cat([(u.alignment.start_sample[1:] - u.alignment.end_sample[:-1]) for u in items]).double() / SR
    assert float(gaps.min()) >= 0 and float(gaps.max()) <= gap_hi + half_sample
    lead = torch.tensor([int(u.alignment.start_sample[0]) for u in items]).double() / SR
    assert cfg.edge_silence_s[0] - half_sample <= float(lead.min()) and float(lead.max()) <= cfg.edge_silence_s[1] + half_sample

    f0 = torch.tensor([u.speaker.f0_hz for u in items])
    assert cfg.f0_hz[0] <= float(f0.min()) and float(f0.max()) <= cfg.f0_hz[1]
    assert len(set(tok for u in items for tok in u.tokens.tolist())) == cfg.num_tokens


def test_custom_config_ranges_are_respected():
    cfg = SyntheticConfig(num_tokens=10, tokens_per_utterance=(2, 3), token_duration_s=(0.1, 0.1), speaking_rate=(1.0, 1.0))
    ds = SyntheticSpeechDataset(30, seed=4, config=cfg)
    for i in range(30):
        u = ds[i]
        assert 2 <= u.tokens.numel() <= 3
        assert torch.equal(u.alignment.end_sample - u.alignment.start_sample, torch.full((u.tokens.numel(),), 1600))


def test_render_given_tokens():
    synth = SpeechSynthesizer()
    u = synth.render(synth.vocab.encode("hello"), seed=3)
    assert u.text == "hello" and u.tokens.tolist() == [7, 4, 11, 11, 14]
    with pytest.raises(ValueError, match="blank"):
        synth.render([synth.vocab.blank])
    with pytest.raises(ValueError, match="empty"):
        synth.render([])


def test_bad_config_and_dataset_arguments():
    with pytest.raises(ValueError, match="num_tokens"):
        SyntheticConfig(num_tokens=1)
    with pytest.raises(ValueError, match="low <= high"):
        SyntheticConfig(f0_hz=(200.0, 100.0))
    with pytest.raises(ValueError, match="num_utterances"):
        SyntheticSpeechDataset(0)
    with pytest.raises(IndexError):
        SyntheticSpeechDataset(3)[3]


# ---------------------------------------------------------------------------- config limits
# Each bad value: (field, value, what the message must say). The message names the field,
# the allowed range and the value given.
BAD_CONFIGS = {
    "formant_scale_zero_gives_nan": ("formant_scale", (0.0, 0.0), r"in \[0.5, 2\], got \(0.0, 0.0\)"),
    "formant_scale_negative": ("formant_scale", (-1.0, 1.0), r"in \[0.5, 2\], got \(-1.0, 1.0\)"),
    "formant_scale_too_large": ("formant_scale", (1.0, 100.0), r"in \[0.5, 2\]"),
    "f0_above_rendered_band": ("f0_hz", (100.0, 6000.0), r"in \(5.13479, 4761.9\] Hz, got \(100.0, 6000.0\).*5000 Hz"),
    "f0_zero": ("f0_hz", (0.0, 100.0), r"in \(5.13479, 4761.9\] Hz"),
    "f0_overflows_wavetable": ("f0_hz", (4.0, 100.0), r"in \(5.13479, 4761.9\] Hz.*wavetable"),
    "f0_nan": ("f0_hz", (math.nan, 100.0), r"of finite numbers in \(5.13479, 4761.9\] Hz, got \(nan, 100.0\)"),
    "peak_above_one": ("peak", (0.5, 1.5), r"in \[0.001, 1\], got \(0.5, 1.5\)"),
    "peak_zero": ("peak", (0.0, 0.0), r"in \[0.001, 1\], got \(0.0, 0.0\)"),
    "snr_inf": ("snr_db", (math.inf, math.inf), r"in \[-20, 200\] dB, got \(inf, inf\).*clean audio use \(200, 200\)"),
    "snr_overflows_power": ("snr_db", (4000.0, 4000.0), r"in \[-20, 200\] dB"),
    "snr_speech_buried": ("snr_db", (-60.0, 10.0), r"in \[-20, 200\] dB"),
    "signature_seed_negative": ("signature_seed", -1, r"integer in \[0, inf\), got -1"),
    "signature_seed_float": ("signature_seed", 1.5, r"integer in \[0, inf\), got 1.5"),
    "num_tokens_float": ("num_tokens", 5.0, r"integer in \[2, 36\], got 5.0"),
    "num_tokens_too_many": ("num_tokens", 37, r"integer in \[2, 36\], got 37"),
    "num_tokens_bool": ("num_tokens", True, r"integer in \[2, 36\], got True"),
    "tokens_per_utterance_zero": ("tokens_per_utterance", (0, 3), r"integers in \[1, inf\), got \(0, 3\)"),
    "tokens_per_utterance_float": ("tokens_per_utterance", (1.5, 3), r"two integers, got \(1.5, 3\)"),
    "token_duration_inf": ("token_duration_s", (0.1, math.inf), r"in \(0, inf\) s, got \(0.1, inf\)"),
    "token_duration_zero": ("token_duration_s", (0.0, 0.1), r"in \(0, inf\) s"),
    "speaking_rate_zero": ("speaking_rate", (0.0, 1.0), r"in \(0, inf\), got \(0.0, 1.0\)"),
    "speaking_rate_nan": ("speaking_rate", (1.0, math.nan), r"in \(0, inf\), got \(1.0, nan\)"),
    "gap_negative": ("gap_s", (-0.1, 0.1), r"in \[0, inf\) s, got \(-0.1, 0.1\)"),
    "edge_silence_nan": ("edge_silence_s", (math.nan, 0.1), r"in \[0, inf\) s"),
    "ramp_longer_than_half_the_shortest_token": ("ramp_s", 0.05, r"in \[0, 0.032\] s, got 0.05.*shortest"),
    "ramp_negative": ("ramp_s", -0.01, r"in \[0, 0.032\] s, got -0.01"),
    "ramp_nan": ("ramp_s", math.nan, r"in \[0, 0.032\] s, got nan"),
    "allow_repeats_not_bool": ("allow_repeats", 1, r"True or False, got 1"),
    "range_of_three": ("snr_db", (10.0, 20.0, 30.0), r"two finite numbers, got \(10.0, 20.0, 30.0\)"),
    "range_not_a_pair": ("peak", 0.5, r"two finite numbers, got 0.5"),
}


@pytest.mark.parametrize("field, value, message", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_value_names_field_and_allowed_range(field, value, message):
    with pytest.raises(ValueError, match=rf"^{field} must be .*{message}"):
        SyntheticConfig(**{field: value})


def test_shortest_token_under_one_frame_is_refused():
    with pytest.raises(ValueError, match=r"shortest spoken token.*must be in \[0.01, inf\) s.*got 0.005 / 1.25"):
        SyntheticConfig(token_duration_s=(0.005, 0.1))


def test_shortest_utterance_under_201_samples_is_refused():
    with pytest.raises(ValueError, match=r"shortest utterance.*must be over 200 samples"):
        SyntheticConfig(token_duration_s=(0.012, 0.1), speaking_rate=(1.0, 1.0), edge_silence_s=(0.0, 0.0), ramp_s=0.0)


def test_config_from_json_lists_equals_the_default():
    assert SyntheticConfig(f0_hz=[90.0, 240.0], tokens_per_utterance=[3, 10]) == SyntheticConfig()


@pytest.mark.parametrize("f0_hz", [F0_HZ_LIMITS[0] * 1.001, F0_HZ_LIMITS[1]])
@pytest.mark.parametrize("formant_scale", FORMANT_SCALE_LIMITS)
def test_every_token_is_audible_at_the_limits(f0_hz, formant_scale):
    """At the edges of the allowed f0 and formant-scale ranges every symbol still sounds: in
    an utterance of all symbols the quietest token is within 20 dB of the loudest (past the
    limits, e.g. f0 = 6000 Hz or formant_scale = 100, some are 60+ dB down: silent but labelled)."""
    synth = SpeechSynthesizer(SyntheticConfig(f0_hz=(f0_hz, f0_hz), formant_scale=(formant_scale, formant_scale),
                                              snr_db=(200.0, 200.0)))
    for seed in (0, 1):
        u = synth.render(list(range(synth.vocab.num_tokens)), seed=seed)
        w = u.waveform.double()
        assert bool(torch.isfinite(w).all()) and float(w.abs().max()) <= 1.0
        spans = zip(u.alignment.start_sample.tolist(), u.alignment.end_sample.tolist())
        rms = torch.tensor([float(w[s:e].pow(2).mean().sqrt()) for s, e in spans])
        assert float(rms.min()) > 0.1 * float(rms.max())


def test_peak_limits_are_respected():
    for peak in (1e-3, 1.0):
        w = SpeechSynthesizer(SyntheticConfig(peak=(peak, peak))).random_utterance(0).waveform
        assert float(w.abs().max()) == pytest.approx(peak, rel=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("f0_hz", 0.0, r"in \(5.13479, 4761.9\] Hz, got 0.0"),
    ("formant_scale", 0.0, r"in \[0.5, 2\], got 0.0"),
    ("rate", 0.0, r"in \(0, inf\), got 0.0"),
    ("snr_db", math.inf, r"in \[-20, 200\] dB, got inf"),
    ("noise_slope", math.nan, r"in \[0, 2\], got nan"),
    ("peak", 2.0, r"in \[0.001, 1\], got 2.0"),
])
def test_bad_speaker_value_names_field_and_allowed_range(field, value, message):
    voice = dict(f0_hz=120.0, formant_scale=1.0, rate=1.0, snr_db=20.0, noise_slope=0.5, peak=0.5)
    with pytest.raises(ValueError, match=rf"^{field} must be .*{message}"):
        Speaker(**{**voice, field: value})


@pytest.mark.parametrize("seed", [-3, [0, -3]])
def test_negative_render_seed_is_refused_by_name(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, inf\)"):
        SpeechSynthesizer().render([1, 2], seed=seed)


def test_vocabulary_letters_needs_an_integer():
    with pytest.raises(ValueError, match=r"num_tokens must be an integer in \[1, 36\], got 2.5"):
        Vocabulary.letters(2.5)


# ---------------------------------------------------------------------------- batching
def test_collate_without_features(items, dataset):
    batch = collate(items[:5])
    assert len(batch) == 5 and batch.features is None and batch.feature_lengths is None
    n_max = max(u.waveform.numel() for u in items[:5])
    u_max = max(u.tokens.numel() for u in items[:5])
    assert batch.waveforms.shape == (5, n_max) and batch.waveforms.dtype == torch.float32
    assert batch.targets.shape == (5, u_max)
    for t in (batch.targets, batch.target_lengths, batch.waveform_lengths):
        assert t.dtype == torch.int32
    for b, u in enumerate(items[:5]):
        assert torch.equal(batch.targets[b, : u.tokens.numel()], u.tokens)
        assert int(batch.target_lengths[b]) == u.tokens.numel()
        assert torch.equal(batch.waveforms[b, : u.waveform.numel()], u.waveform)


def test_collate_with_features_and_rnnt_loss(items, dataset):
    fe = FeatureExtractor()
    fe.fit(u.waveform for u in items[:10])
    batch = Collate(fe)(items[:4])
    t_max = int(batch.feature_lengths.max())
    assert batch.features.shape == (4, t_max + RIGHT_PADDING, N_MELS) and batch.features.dtype == torch.float32
    assert batch.feature_lengths.dtype == torch.int32
    assert batch.feature_lengths.tolist() == [num_frames(u.waveform.numel()) for u in items[:4]]
    assert torch.equal(batch.features[0, : batch.feature_lengths[0]], fe.features(items[0].waveform))
    # The dtypes are what torchaudio's rnnt_loss accepts, with blank = last index.
    V = dataset.vocab.num_symbols
    logits = torch.zeros(4, t_max, int(batch.target_lengths.max()) + 1, V)
    loss = torchaudio.functional.rnnt_loss(
        logits, batch.targets, batch.feature_lengths, batch.target_lengths, blank=dataset.vocab.blank
    )
    assert torch.isfinite(loss)


def test_dataloader(dataset):
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=Collate(FeatureExtractor()))
    batch = next(iter(loader))
    assert batch.features.size(0) == batch.targets.size(0) == 8


# ---------------------------------------------------------------------------- learnability
def test_symbols_are_distinguishable_but_renditions_vary():
    """Mean feature over a token span: renditions of one symbol (other voices, durations,
    noise) are closer to each other than to any other symbol's on average, and a
    nearest-centroid classifier is far above chance yet not perfect."""
    ds = SyntheticSpeechDataset(120, seed=3)
    fe = FeatureExtractor()
    fe.fit(ds[i].waveform for i in range(20))
    vectors, labels = [], []
    for i in range(len(ds)):
        u = ds[i]
        feats = fe.features(u.waveform)
        for tok, a, b in zip(u.tokens.tolist(), u.alignment.start_frame.tolist(), u.alignment.end_frame.tolist()):
            vectors.append(feats[a + 1 : b - 1].mean(0))  # interior frames: skip the smeared edges
            labels.append(tok)
    x, y = torch.stack(vectors), torch.tensor(labels)
    dist = torch.cdist(x, x)
    eye = torch.eye(len(y), dtype=torch.bool)
    V = ds.vocab.num_tokens
    for k in range(V):
        within = dist[(y[:, None] == k) & (y[None] == k) & ~eye].mean()
        nearest_other = min(dist[(y[:, None] == k) & (y[None] == j)].mean() for j in range(V) if j != k)
        assert within < nearest_other, f"symbol {ds.vocab.tokens[k]} is not distinct"
        assert within > 0.5  # renditions really differ
    train = torch.arange(len(y)) < 2 * len(y) // 3
    centroids = torch.stack([x[train & (y == k)].mean(0) for k in range(V)])
    accuracy = (torch.cdist(x[~train], centroids).argmin(1) == y[~train]).float().mean()
    assert 0.6 < float(accuracy)
