"""The live recogniser (notebook 00): its library callback and its widget, driven by setting the text."""
import base64

import matplotlib

matplotlib.use("Agg")
import pytest

from emformer_edu.teaching import live, widgets
from emformer_edu.train import pretrained as shipped

# A live demo must not warn (deprecation notices from matplotlib or torch are not the demo's).
pytestmark = [pytest.mark.filterwarnings("error"), pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def spoken():
    return shipped.spoken()


@pytest.fixture(scope="module")
def result(spoken):
    return live.live_recognition("turn off the radio", "en-us+m5", spoken)


def test_transcript_is_the_library_streaming_greedy_transcript(spoken, result):
    assert result.transcript == spoken.recognize(result.waveform, beam_width=None, streaming=True)
    assert result.transcript == spoken.vocab.decode(result.tokens)
    assert len(result.timesteps) == len(result.tokens)


def test_one_step_per_chunk_and_the_transcript_only_grows(spoken, result):
    assert len(result.steps) == len(spoken.chunks(result.features))
    texts = [s.transcript for s in result.steps]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # greedy never revises what it wrote
    assert texts[-1] == result.transcript
    ends = [s.end_s for s in result.steps]
    seg, R = spoken.segment_length, spoken.right_context_length
    assert ends[0] == pytest.approx((seg + R) / 100)  # 10 ms frames
    assert all(b - a == pytest.approx(seg / 100) for a, b in zip(ends[:-2], ends[1:-1]))
    assert ends[-1] <= result.duration_s + 1e-9 and ends == sorted(ends)
    report = result.report()
    assert f"after chunk  0 (audio up to {ends[0]:.2f} s)" in report and f"spoken:     {result.text!r}" in report


def test_the_recording_holds_the_sentence_with_silence_around_it(result):
    utt = result.utterance
    assert utt.text == "turn off the radio" and utt.speaker.name == "en-us+m5"
    lead = round(live.EDGE_SILENCE_S * 16000)
    assert int(utt.words.start_sample[0]) >= lead
    assert int(utt.words.end_sample[-1]) <= utt.waveform.numel() - lead
    assert list(utt.words.labels) == ["turn", "off", "the", "radio"]
    assert result.unknown_words == () and result.warning() == ""


def test_text_is_tidied_and_words_outside_the_lexicon_are_named(spoken):
    r = live.live_recognition("  Please call   my MOTHER ", "en-us", spoken)
    assert r.text == "please call my mother"
    assert r.unknown_words == ("please",)
    assert "'please' is not in the training lexicon" in r.report()


@pytest.mark.parametrize("text, match", [
    ("turn off 7 lights!", r"'7', 'lights!' use characters outside the model's vocabulary"),
    ("", "the text is empty"),
    (42, "text must be a string"),
    ("turn ' off", "has no letter"),
])
def test_bad_text_raises_a_clear_error(spoken, text, match):
    with pytest.raises(ValueError, match=match):
        live.live_recognition(text, "en-us", spoken)


def test_unknown_voice_raises(spoken):
    with pytest.raises(ValueError, match="unknown eSpeak NG voice"):
        live.live_recognition("turn off the radio", "xx-nope", spoken)


def test_a_synthetic_model_is_refused():
    with pytest.raises(ValueError, match="needs a spoken model"):
        live.live_recognition("turn off the radio", "en-us", shipped.toy())


def test_figure_draws_the_true_text_lattice_and_word_spans(result):
    fig = live.live_figure(result)
    ax_f = fig.axes[0]
    ax_l = next(ax for ax in fig.axes if "Viterbi emits" in ax.get_title())
    words = [t.get_text() for t in ax_f.texts]
    assert words == ["turn", "off", "the", "radio"]
    rows = [t.get_text() for t in ax_l.get_yticklabels()]
    assert len(rows) == len(result.utterance.tokens) + 1 and rows[-1] == "18: o"  # one row per true character
    assert result.transcript in ax_f.get_title()
    matplotlib.pyplot.close(fig)


def test_voice_choices_offer_the_held_out_voices_first(spoken):
    voices = [v for _, v in live.voice_choices(spoken)]
    assert voices[: len(spoken.test_voices)] == list(spoken.test_voices)
    extra = voices[len(spoken.test_voices):]
    assert extra and set(extra) <= set(spoken.spoken_config.train_voices)


# ----------------------------------------------------------------------------- the widget
def _texts(widget):
    return "".join(o["text"] for o in widget.output.outputs if o["output_type"] == "stream")


def test_widget_shows_audio_transcript_and_figure(spoken):
    w = widgets.live_recogniser(spoken)
    audio, text, figure = w.output.outputs
    assert "<audio" in audio["data"]["text/html"] and "data:audio/wav;base64," in audio["data"]["text/html"]
    assert text["output_type"] == "stream" and f"recognised: {w.result.transcript!r}" in text["text"]
    assert base64.b64decode(figure["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert w.controls["text"].continuous_update is False
    assert w.values == {"text": live.DEFAULT_TEXT, "voice": live.DEFAULT_VOICE}


def test_setting_the_text_reruns_the_recogniser(spoken):
    w = widgets.live_recogniser(spoken)
    first_png = w.output.outputs[2]["data"]["image/png"]
    w.controls["text"].value = "turn off the radio"
    assert w.result.text == "turn off the radio" and w.error is None
    assert w.result.transcript == spoken.recognize(w.result.waveform, beam_width=None, streaming=True)
    assert "spoken:     'turn off the radio'" in _texts(w)
    assert w.output.outputs[2]["data"]["image/png"] != first_png
    assert [t.get_text() for t in w.figure.axes[0].texts] == ["turn", "off", "the", "radio"]
    w.controls["voice"].value = spoken.test_voices[1]
    assert w.result.voice == spoken.test_voices[1] and f"spoken by {spoken.test_voices[1]}" in _texts(w)


def test_bad_text_shows_its_error_and_the_widget_recovers(spoken):
    w = widgets.live_recogniser(spoken)
    w.controls["text"].value = "turn off 7 lights"
    (only,) = w.output.outputs
    assert only["output_type"] == "stream" and "cannot recognise this sentence" in only["text"]
    assert "'7' uses characters outside the model's vocabulary" in only["text"]
    assert w.result is None and w.figure is None and "'7'" in w.error
    w.controls["text"].value = "go home"
    assert w.error is None and w.result.text == "go home" and len(w.output.outputs) == 3
