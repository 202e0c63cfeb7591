"""Synthetic corpus: deterministic, well-aligned, within its configured ranges, learnable."""
import pytest
import torch
import torchaudio

from emformer_edu.data.features import HOP_LENGTH, N_MELS, RIGHT_PADDING, FeatureExtractor, num_frames
from emformer_edu.data.corpus import Collate, Vocabulary, collate
from emformer_edu.data.synthetic import SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset

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
