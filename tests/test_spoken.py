"""The spoken corpus: deterministic items, a speaker- and sentence-independent split, batching."""
import pytest
import torch

from conftest import needs_espeak
from emformer_edu.data.corpus import Collate, Utterance
from emformer_edu.data.features import N_MELS, RIGHT_PADDING, FeatureExtractor, num_frames
from emformer_edu.data.lexicon import DIGITS, LEXICON
from emformer_edu.data import spoken
from emformer_edu.data.speech import CHARACTERS, SpokenUtterance, UnspokenWordError, speak
from emformer_edu.data.spoken import SpokenConfig, SpokenDataset, pair_is_test, sentence_split




@pytest.fixture(scope="module")
def train():
    return SpokenDataset(40, split="train", seed=0)


@pytest.fixture(scope="module")
def test_set():
    return SpokenDataset(40, split="test", seed=0)


@pytest.fixture(scope="module")
def items(train):
    return [train[i] for i in range(8)]


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt()) if x.numel() else 0.0


# ----------------------------------------------------------------------------- lexicon
def test_lexicon_is_documented_words():
    assert 200 <= len(LEXICON) <= 600 and LEXICON == tuple(sorted(set(LEXICON)))
    assert set(DIGITS) <= set(LEXICON) and {"yes", "no", "stop", "go", "don't"} <= set(LEXICON)
    assert all(w and set(w) <= set(CHARACTERS) - {" "} for w in LEXICON)


@needs_espeak
def test_espeak_speaks_every_lexicon_word_as_one_word():
    for i in range(0, len(LEXICON), 70):
        chunk = LEXICON[i:i + 70]
        u = speak(" ".join(chunk), rate=300)  # raises if a word gets no phonemes of its own
        assert u.words.labels == chunk and ((u.words.end_sample - u.words.start_sample) > 0).all()


# ----------------------------------------------------------------------------- items
@needs_espeak
def test_items_are_utterances_with_spans(train, items):
    vocab = train.vocab
    for u in items:
        assert isinstance(u, SpokenUtterance) and isinstance(u, Utterance)
        n = u.waveform.numel()
        assert u.waveform.dtype == torch.float32 and u.waveform.abs().max() <= 1.0
        assert vocab.decode(u.tokens) == u.text and len(u.alignment) == len(u.text) == u.tokens.numel()
        assert u.words.labels == tuple(u.text.split()) and all(w in LEXICON for w in u.words.labels)
        assert u.speaker.name in train.voices
        lead = u.channel.lead
        assert u.alignment.start_sample[0] >= lead and u.words.end_sample[-1] <= n - u.channel.tail
        assert (u.phonemes.start_sample >= u.words.start_sample[u.phoneme_word]).all()
        assert (u.phonemes.end_sample <= u.words.end_sample[u.phoneme_word]).all()


@needs_espeak
def test_items_are_deterministic_in_any_order(train, items):
    fresh = SpokenDataset(40, split="train", seed=0)
    for i in (5, 2, 5):
        u = fresh[i]
        assert torch.equal(u.waveform, items[i].waveform) and u.text == items[i].text
        assert torch.equal(u.words.start_sample, items[i].words.start_sample) and u.channel == items[i].channel
    assert fresh.sentence(3) == items[3].text and train[-1].text == train[39].text
    assert SpokenDataset(40, seed=1)[0].text != items[0].text
    with pytest.raises(IndexError):
        train[40]


@needs_espeak
def test_words_are_louder_than_the_silence_around_them():
    clean = SpokenConfig(snr_db=(40.0, 40.0), reverb_probability=0.0)
    u = SpokenDataset(3, config=clean)[0]
    w, words = u.waveform, u.words
    speech = torch.cat([w[s:e] for _, s, e in words.as_list()])
    assert _rms(speech) > 30 * _rms(w[: u.channel.lead]) and _rms(speech) > 30 * _rms(w[-u.channel.tail:])


@needs_espeak
def test_reverb_and_noise_change_only_the_audio():
    base = dict(snr_db=(200.0, 200.0), edge_silence_s=(0.1, 0.1), peak=(0.5, 0.5), word_gap=(0, 0))
    dry = SpokenDataset(2, config=SpokenConfig(reverb_probability=0.0, **base))[0]
    wet = SpokenDataset(2, config=SpokenConfig(reverb_probability=1.0, **base))[0]
    assert dry.text == wet.text and dry.speaker == wet.speaker and wet.channel.rt60_s is not None
    assert torch.equal(dry.words.start_sample, wet.words.start_sample) and dry.waveform.shape == wet.waveform.shape
    # The room rings on after the last word; the dry voice's own release can last 25-50 ms past eSpeak's word end.
    tail = slice(int(dry.words.end_sample[-1]) + 800, None)
    assert _rms(wet.waveform[tail]) > 10 * _rms(dry.waveform[tail])


# ----------------------------------------------------------------------------- split
def test_split_holds_out_voices_and_sentences(train, test_set):
    config = train.config
    assert set(train.voices).isdisjoint(test_set.voices)
    variants = lambda voices: {v.partition("+")[2] for v in voices}  # noqa: E731
    assert variants(train.voices).isdisjoint(variants(test_set.voices))
    big_train, big_test = SpokenDataset(400, "train"), SpokenDataset(400, "test")
    train_sentences = {big_train.sentence(i) for i in range(400)}
    test_sentences = {big_test.sentence(i) for i in range(400)}
    assert train_sentences.isdisjoint(test_sentences) and len(test_sentences) > 350
    frac = config.test_pair_fraction
    train_pairs = {p for s in train_sentences for p in zip(s.split(), s.split()[1:])}
    assert not any(pair_is_test(a, b, frac) for a, b in train_pairs)
    assert all(sentence_split(s.split(), frac) == "test" for s in test_sentences)
    assert all(any((a, b) not in train_pairs for a, b in zip(s.split(), s.split()[1:])) for s in test_sentences)
    held_out = sum(pair_is_test(a, b, frac) for a in LEXICON[:60] for b in LEXICON[:60]) / 3600
    assert abs(held_out - frac) < 0.03


@needs_espeak
def test_test_items_use_test_voices(test_set):
    u = test_set[0]
    assert u.speaker.name in SpokenConfig().test_voices and sentence_split(u.text.split(), 0.15) == "test"


@needs_espeak
def test_every_default_voice_speaks():
    config = SpokenConfig()
    for voice in config.train_voices + config.test_voices:
        assert speak("yes", voice=voice).waveform.abs().max() > 0.1


# ----------------------------------------------------------------------------- batching
@needs_espeak
def test_collate_with_features(items):
    batch = Collate(FeatureExtractor())(items)
    lengths = [u.waveform.numel() for u in items]
    assert batch.waveforms.shape == (8, max(lengths)) and batch.targets.dtype == torch.int32
    assert batch.target_lengths.tolist() == [len(u.text) for u in items]
    assert batch.features.shape == (8, num_frames(max(lengths)) + RIGHT_PADDING, N_MELS)
    assert batch.feature_lengths.tolist() == [num_frames(n) for n in lengths]
    loader = torch.utils.data.DataLoader(SpokenDataset(4), batch_size=2, collate_fn=Collate())
    assert [len(b) for b in loader] == [2, 2]


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("kwargs, match", [
    (dict(test_voices=("en-us",)), "disjoint"), (dict(train_voices=()), "non-empty"),
    (dict(words_per_sentence=(1, 3)), "words_per_sentence"), (dict(lexicon=("go", "turn left")), "single words"),
    (dict(lexicon=("Go",)), "lower-case"), (dict(test_pair_fraction=1.0), "below 1"),
    (dict(rate=(50, 200)), "rate"), (dict(snr_db=(-40.0, 0.0)), "snr_db"), (dict(peak=(0.5, 2.0)), "peak"),
    (dict(train_speed=(0.2, 1.0)), "train_speed"), (dict(train_tilt=(-1.0, 0.0)), "train_tilt"),
])
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpokenConfig(**kwargs)


def test_bad_dataset_arguments_are_refused():
    with pytest.raises(ValueError, match="split"):
        SpokenDataset(4, split="valid")
    with pytest.raises(ValueError, match="num_utterances"):
        SpokenDataset(0)


@needs_espeak
def test_words_run_together_are_drawn_again(monkeypatch):
    """eSpeak sometimes runs two words into one ("from which"): the item is drawn again, deterministically."""
    calls = []
    real = spoken.speak_voice

    def first_fails(text, voice):
        calls.append(text)
        if len(calls) == 1:
            raise UnspokenWordError("merged")
        return real(text, voice)

    dataset = SpokenDataset(4, split="train", seed=3)
    monkeypatch.setattr(spoken, "speak_voice", first_fails)
    a = dataset[2]
    monkeypatch.setattr(spoken, "speak_voice", real)
    assert len(calls) == 2 and a.text == calls[1]
    calls.clear()
    monkeypatch.setattr(spoken, "speak_voice", first_fails)
    assert torch.equal(dataset[2].waveform, a.waveform)  # the same redraw every time
    monkeypatch.setattr(spoken, "speak_voice", lambda text, voice: (_ for _ in ()).throw(UnspokenWordError("x")))
    with pytest.raises(RuntimeError, match="ran words together"):
        dataset[2]


# ----------------------------------------------------------------------------- training-only augmentation
AUGMENTED = SpokenConfig(train_speed=(0.88, 1.12), train_tilt=(-0.5, 0.5))


@needs_espeak
def test_training_items_are_augmented_and_test_items_are_not():
    train, test = SpokenDataset(20, "train", 0, AUGMENTED), SpokenDataset(20, "test", 0, AUGMENTED)
    speeds = [train[i].speaker.speed for i in range(12)]
    tilts = [train[i].channel.tilt for i in range(12)]
    assert all(0.88 <= v <= 1.12 for v in speeds) and len(set(speeds)) > 6
    assert all(-0.5 <= v <= 0.5 for v in tilts) and len(set(tilts)) > 6
    for i in range(6):  # the held-out voices are heard as recorded: new speakers, not augmentations
        assert test[i].speaker.speed == 1.0 and test[i].channel.tilt == 0.0
        assert torch.equal(test[i].waveform, SpokenDataset(20, "test", 0)[i].waveform)


@needs_espeak
def test_augmentation_is_off_by_default_and_changes_only_the_sound(train):
    assert not SpokenConfig().augments and AUGMENTED.augments
    assert all(train[i].speaker.speed == 1.0 and train[i].channel.tilt == 0.0 for i in range(4))
    a, b = SpokenDataset(4, "train", 3, AUGMENTED)[2], SpokenDataset(4, "train", 3)[2]
    assert a.text == b.text and a.speaker.name == b.speaker.name  # the same sentence and speaker, heard differently
    assert not torch.equal(a.waveform, b.waveform)


def test_tilt_colours_the_spectrum_without_moving_the_spans():
    """A positive tilt is a high-pass (y[n] = x[n] - tilt x[n-1]): 100 Hz loses ground to 4 kHz; spans stay put."""
    import numpy as np
    from emformer_edu.data.corpus import Alignment
    from emformer_edu.data.speech import Spans
    n = 16000
    t = np.arange(n) / 16000
    x = torch.from_numpy((np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 4000 * t)).astype(np.float32))
    span = lambda: Spans(torch.tensor([0]), torch.tensor([n]), ("a",))  # noqa: E731
    clean = SpokenUtterance(x, torch.tensor([0]), Alignment(torch.tensor([0]), torch.tensor([n])), "a", None,
                            words=span(), phonemes=span(), phoneme_word=torch.tensor([0]))

    def heard(tilt):
        out = spoken.record(clean, spoken.Channel(0, 0, None, 0.0, 90.0, 0.0, 0.5, tilt), np.random.default_rng(0))
        spectrum = np.abs(np.fft.rfft(out.waveform.numpy()))  # 1 Hz bins
        return out, spectrum[4000] / spectrum[100]

    flat, flat_ratio = heard(0.0)
    thin, thin_ratio = heard(0.5)
    boomy, boomy_ratio = heard(-0.5)
    assert torch.equal(thin.words.start_sample, flat.words.start_sample)
    # |1 - a e^{-iw}|: at 4 kHz (w = pi / 2) sqrt(1 + a^2); at 100 Hz about 1 - a.
    assert flat_ratio == pytest.approx(1.0, rel=1e-2)
    assert thin_ratio == pytest.approx(np.sqrt(1.25) / 0.5, rel=1e-2)
    assert boomy_ratio == pytest.approx(np.sqrt(1.25) / 1.5, rel=1e-2)
