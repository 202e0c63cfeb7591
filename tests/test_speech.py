"""speak(): eSpeak NG audio at 16 kHz with exact word, phoneme and character spans."""
import ctypes.util
import time

import numpy as np
import pytest
import torch

from conftest import needs_espeak
from emformer_edu.data import espeak
from emformer_edu.data.corpus import Utterance
from emformer_edu.data.features import HOP_LENGTH
from emformer_edu.data.speech import CHARACTERS, SpokenUtterance, Voice, character_vocabulary, speak


TEXT = "seven three nine zero"


@pytest.fixture(scope="module")
def utt():
    return speak(TEXT)


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt()) if x.numel() else 0.0


# ----------------------------------------------------------------------------- audio
@needs_espeak
def test_audio_is_16k_float_in_range(utt):
    assert isinstance(utt, SpokenUtterance) and isinstance(utt, Utterance)
    w = utt.waveform
    assert w.dim() == 1 and w.dtype == torch.float32 and utt.sample_rate == 16000
    assert 0.8 < w.numel() / 16000 < 2.5  # the issue measured 1.32 s at eSpeak's 22050 Hz
    assert w.abs().max() <= 1.0 and w.abs().max() > 0.1
    assert utt.text == TEXT and isinstance(utt.speaker, Voice) and utt.speaker == Voice()


@needs_espeak
def test_same_arguments_same_samples(utt):
    speak("go left", voice="en+f3", rate=300)  # eSpeak keeps state between utterances; we must not see it
    again = speak(TEXT)
    assert torch.equal(again.waveform, utt.waveform)
    assert torch.equal(again.words.start_sample, utt.words.start_sample)
    assert torch.equal(again.phonemes.end_sample, utt.phonemes.end_sample)
    a, b = speak("go", seed=3), speak("go", seed=3)
    assert a.speaker == b.speaker and torch.equal(a.waveform, b.waveform)
    assert len({speak("go", seed=s).speaker for s in range(4)}) > 1
    assert speak("go", seed=3, rate=120).speaker.pitch == a.speaker.pitch  # giving one setting keeps the others


# ----------------------------------------------------------------------------- binding
@needs_espeak
@needs_espeak
def test_breathy_voices_are_deterministic_across_the_clock():
    """Variants with breath noise (f2, f5, ...) draw C's rand(), which eSpeak seeds from time(): we reseed it."""
    first = speak(TEXT, voice="en-us+f2").waveform
    time.sleep(1.1)  # time() moves on: an unseeded rand() would now give other samples
    assert torch.equal(speak(TEXT, voice="en-us+f2").waveform, first)


def test_binding_reports_events_where_the_words_are():
    s = espeak.synthesize(TEXT, "en-us", 175, 50, 50, 0)
    assert s.sample_rate == 22050 and s.samples.dtype == np.int16 and 1.2 < s.samples.size / 22050 < 1.45
    words = [e for e in s.events if e.kind == espeak.EVENT_WORD]
    assert [e.text_position for e in words] == [0, 6, 12, 17]  # where each word is in TEXT
    samples = [e.sample for e in s.events]
    assert samples == sorted(samples) and samples[0] >= 0 and samples[-1] <= s.samples.size
    phonemes = [e.phoneme for e in s.events if e.kind == espeak.EVENT_PHONEME]
    assert phonemes[0] == "s" and phonemes[-1].startswith("_")  # ends in a pause


# ----------------------------------------------------------------------------- spans
@needs_espeak
def test_word_spans_one_per_word_in_order(utt):
    words, n = utt.words, utt.waveform.numel()
    assert words.labels == tuple(TEXT.split())
    s, e = words.start_sample, words.end_sample
    assert s.dtype == torch.int64 and len(words) == 4
    assert (s < e).all() and s[0] >= 0 and e[-1] <= n
    assert (e[:-1] <= s[1:]).all()  # never overlap
    assert torch.equal(words.start_frame, s // HOP_LENGTH) and torch.equal(words.end_frame, e // HOP_LENGTH)


@needs_espeak
def test_phonemes_tile_their_words(utt):
    p, w, owner = utt.phonemes, utt.words, utt.phoneme_word
    assert len(p) == owner.numel() > len(w)
    assert (owner[1:] >= owner[:-1]).all() and set(owner.tolist()) == set(range(len(w)))
    assert (p.start_sample >= w.start_sample[owner]).all() and (p.end_sample <= w.end_sample[owner]).all()
    assert (p.start_sample <= p.end_sample).all()
    same_word = owner[1:] == owner[:-1]
    assert torch.equal(p.end_sample[:-1][same_word], p.start_sample[1:][same_word])  # no holes inside a word
    assert not any(label.startswith("_") for label in p.labels)  # pauses are not phonemes
    by_word = [[lab for lab, k in zip(p.labels, owner.tolist()) if k == i] for i in range(len(w))]
    assert by_word[0][0] == "s" and by_word[1][0] == "T" and by_word[3][0] == "z"  # s-even, th-ree, z-ero


@needs_espeak
def test_character_alignment_follows_words(utt):
    vocab = character_vocabulary()
    assert vocab.tokens == tuple(CHARACTERS) and vocab.blank == 28
    assert utt.tokens.dtype == torch.int32 and vocab.decode(utt.tokens) == TEXT
    a = utt.alignment
    assert len(a) == len(TEXT) and (a.start_sample <= a.end_sample).all()
    assert (a.end_sample[:-1] == a.start_sample[1:]).all()  # letters tile words, spaces tile gaps
    starts = [i for i, c in enumerate(TEXT) if c != " " and (i == 0 or TEXT[i - 1] == " ")]
    ends = [i for i, c in enumerate(TEXT) if c != " " and (i + 1 == len(TEXT) or TEXT[i + 1] == " ")]
    assert a.start_sample[starts].tolist() == utt.words.start_sample.tolist()
    assert a.end_sample[ends].tolist() == utt.words.end_sample.tolist()


@needs_espeak
def test_word_boundaries_are_real():
    u = speak("go left stop", word_gap=10)  # 100 ms pauses between words
    w, words = u.waveform, u.words
    inside = [_rms(w[s:e]) for _, s, e in words.as_list()]
    gaps = [w[e:s] for e, s in zip(words.end_sample[:-1].tolist(), words.start_sample[1:].tolist())]
    assert all(g.numel() > 0.05 * 16000 for g in gaps)
    assert min(inside) > 100 * max(_rms(g) for g in gaps)
    # Without pauses: the end of the last word is where the sound stops.
    u = speak("seven")
    end = int(u.words.end_sample[-1])
    assert _rms(u.waveform[u.words.start_sample[0]:end]) > 100 * _rms(u.waveform[end:]) and end < u.waveform.numel()


@needs_espeak
def test_rate_pitch_and_voices_change_the_audio(utt):
    slow, fast = speak(TEXT, rate=120), speak(TEXT, rate=300)
    assert slow.waveform.numel() > 1.8 * fast.waveform.numel()
    assert not torch.equal(speak(TEXT, pitch=80).waveform[:8000], utt.waveform[:8000])
    f3, m5 = speak(TEXT, voice="en+f3"), speak(TEXT, voice="en-us+m5")
    assert f3.speaker.name == "en+f3" and not torch.equal(f3.waveform[:8000], m5.waveform[:8000])
    assert "f3" in espeak.list_variants() and "m5" in espeak.list_variants()


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("text, match", [
    ("", "empty"), ("   ", "empty"), ("seven 7", "'7'.*spell numbers"), ("café", "'é'"),
    ("Hello", "'H'.*lower-case"), ("go, stop", "','"), ("two  spaces", "single spaces"), (" go", "single spaces"),
    ("go '", "no letter"), (7, "must be a string"),
])
def test_bad_text_is_refused(text, match):
    with pytest.raises(ValueError, match=match):
        speak(text)


@needs_espeak
@pytest.mark.parametrize("kwargs, match", [
    (dict(voice="xx-nowhere"), "unknown eSpeak NG voice"),
    (dict(voice="en+nobody"), "unknown eSpeak NG voice variant"),
    (dict(voice="+f3"), "names no language"), (dict(voice=""), "non-empty"), (dict(rate=10), "rate"),
    (dict(pitch=101), "pitch"), (dict(pitch_range=-1), "pitch_range"), (dict(seed=-1), "seed"),
    (dict(word_gap=1.5), "word_gap"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        speak("go", **kwargs)


def test_missing_library_names_what_to_install(monkeypatch):
    monkeypatch.setattr(espeak, "espeakng_loader", None)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(espeak.EspeakNotFoundError, match=r"pip install espeakng-loader.*libespeak-ng"):
        speak("go")
    with pytest.raises(ValueError, match="empty"):  # text is checked before the library is needed
        speak("")


@needs_espeak
def test_speed_plays_the_audio_faster_and_moves_the_spans_with_it():
    """Voice.speed resamples eSpeak's 22,050 Hz audio as if it had 22050 * speed Hz: shorter, and spans scale."""
    from emformer_edu.data.speech import Voice, speak_voice
    normal = speak_voice("seven three nine", Voice())
    fast = speak_voice("seven three nine", Voice(speed=1.1))
    slow = speak_voice("seven three nine", Voice(speed=0.9))
    assert Voice(speed=1.1).source_rate(22050) == 24250 and Voice().source_rate(22050) == 22050
    ratio = normal.waveform.numel() / fast.waveform.numel()
    assert abs(ratio - 24250 / 22050) < 2e-3
    assert slow.waveform.numel() > normal.waveform.numel()
    ends = normal.words.end_sample.double() / fast.words.end_sample.double()
    assert torch.allclose(ends, torch.full_like(ends, 24250 / 22050), atol=2e-3)
    assert torch.backends.mkldnn.enabled  # the resampler switched oneDNN off only while it ran
    for bad in (0.3, 2.5, "fast", True):
        with pytest.raises(ValueError, match="speed"):
            Voice(speed=bad)
