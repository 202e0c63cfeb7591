"""Notebook 10's library pieces: the CER's standard error, the variants' table and figures, the emission
times against word_end_delays, the variant widget, and chapter 10's exercises (right accepted, wrong rejected)."""
import math

import matplotlib
import pytest

matplotlib.use("Agg")

from emformer_edu import viz  # noqa: E402
from emformer_edu.teaching import exercises, widgets  # noqa: E402
from emformer_edu.teaching.exercises import ch10_latency  # noqa: E402
from emformer_edu.teaching.exercises._shared import spoken  # noqa: E402
from emformer_edu.train.latency import word_end_delays  # noqa: E402
from emformer_edu.transducer.streaming import latency_ms  # noqa: E402

from exercise_answers import ch10  # noqa: E402


def _row(S, R, M, cer):
    return {"segment_length": S, "right_context_length": R, "max_memory_size": M, "latency_ms": latency_ms(S, R, 4),
            "cer": cer, "wer": 2 * cer, "emitted_ms": {"mean": -5.0, "p90": 60.0},
            "available_ms": {"mean": 100.0, "p90": 180.0}, "words_right": 300, "words": 400}


RESULTS = {"baseline": _row(16, 4, 4, 0.10), "short segments": _row(8, 4, 4, 0.12),
           "no look-ahead": _row(16, 0, 4, 0.2)}


@pytest.fixture(scope="module")
def sentence():
    pre = spoken()
    return pre, pre.held_out(8)[ch10_latency.AVAILABLE_SENTENCE]


def test_cer_standard_error_is_the_ratio_estimators():
    e, n = [2.0, 0.0, 5.0, 1.0], [20.0, 25.0, 30.0, 15.0]
    cer = sum(e) / sum(n)
    resid = [a - cer * b for a, b in zip(e, n)]
    mean = sum(resid) / 4
    sd = math.sqrt(sum((r - mean) ** 2 for r in resid) / 3)
    assert viz.cer_standard_error(e, n) == pytest.approx(sd / (22.5 * 2))
    # the spread of 4 sentences scaled to 100: five times smaller than for 4
    assert viz.cer_standard_error(e, n, num_sentences=100) == pytest.approx(viz.cer_standard_error(e, n) / 5)
    assert viz.cer_standard_error([1, 2, 3], [10, 20, 30]) == 0.0  # every sentence at the same CER: no spread


@pytest.mark.parametrize("args, match", [
    (([1.0, 2.0], [10.0]), "one entry per sentence"), (([1.0], [10.0]), "at least 2"),
    (([1.0, 2.0], [10.0, 0.0]), "positive"), (([1.0, 2.0], [10.0, 5.0], 0), "num_sentences"),
])
def test_cer_standard_error_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        viz.cer_standard_error(*args)


def test_latency_table_has_one_row_per_variant_in_order():
    text = viz.latency_table(RESULTS, {"baseline": 0.012})
    rows = text.splitlines()[3:]
    assert [r.split("  ")[0] for r in rows] == list(RESULTS)
    assert "10.0±1.2" in rows[0] and "12.0" in rows[1]
    assert " 190 " in rows[0] and " 115 " in rows[0]  # worst (16 + 4 - 1) * 10, average 7.5 * 10 + 40
    with pytest.raises(ValueError, match="no variant"):
        viz.latency_table({})


def test_cer_latency_figure_labels_one_point_per_variant():
    fig = viz.cer_latency_figure(RESULTS)
    left = fig.axes[0]
    assert [t.get_text() for t in left.texts] == list(RESULTS)
    xs = [t.xy[0] for t in left.texts]
    assert xs == [RESULTS[n]["latency_ms"]["average"] for n in RESULTS]
    assert [t.xy[1] for t in left.texts] == pytest.approx([100 * RESULTS[n]["cer"] for n in RESULTS])
    with pytest.raises(ValueError, match="no variant"):
        viz.cer_latency_figure({})


def test_emission_times_agree_with_word_end_delays(sentence):
    # The figure's "available" dot of each word's last character is word_end_delays' time, to the millisecond.
    pre, utt = sentence
    em = viz.variant_emissions(pre, utt, "shipped")
    delays = word_end_delays(pre.model, [utt], pre.feature_extractor, pre.blank, pre.vocab)
    words = em.text.split()
    # 'save' is missed: the first word heard, 'seven', is the sentence's second word and the first recognised right,
    # so it is the first entry of word_end_delays (which keeps the words recognised right, in order).
    assert words[0] == utt.words.labels[1] == "seven"
    last = len(words[0]) - 1  # index of its last character among the emitted tokens
    end_ms = 1000.0 * int(utt.words.end_sample[1]) / 16000
    assert em.available_ms[last] - end_ms == pytest.approx(float(delays.available_ms[0]))
    assert em.emitted_ms[last] - end_ms == pytest.approx(float(delays.emitted_ms[0]))
    assert "".join(em.labels).replace("␣", " ") == em.text


def test_emissions_figure_one_row_per_variant(sentence):
    pre, utt = sentence
    em = viz.variant_emissions(pre, utt, "shipped")
    fig = viz.emissions_figure([em, em], utt)
    assert len(fig.axes[0].get_yticks()) == 2
    with pytest.raises(ValueError, match="no variant"):
        viz.emissions_figure([], utt)


def test_variant_widget_switches_variant(sentence):
    pre, utt = sentence
    w = widgets.variant_explorer({"baseline": pre, "again": pre}, utt)
    assert w.figure.axes[0].get_title().startswith("baseline")
    first = w.figure
    w.controls["variant"].value = "again"
    assert w.figure is not first and w.figure.axes[0].get_title().startswith("again")
    assert w.output.outputs[0]["data"]["image/png"]
    with pytest.raises(ValueError, match="unknown variant"):
        widgets.variant_explorer({"baseline": pre}, utt, variant="nope")
    with pytest.raises(ValueError, match="no model"):
        widgets.variant_explorer({}, utt)
    with pytest.raises(ValueError, match="unknown variant"):
        viz.variant_figure("nope", {"baseline": pre}, utt)


@pytest.fixture
def registered(monkeypatch):
    # Chapter 10 joins the registry in exercises/__init__.py; until then the test registers it itself.
    for key, entry in ch10_latency.EXERCISES.items():
        monkeypatch.setitem(exercises.EXERCISES, key, entry)
    exercises._computed.cache_clear()
    yield
    exercises._computed.cache_clear()


@pytest.mark.parametrize("key", list(ch10_latency.EXERCISES))
def test_exercise_right_answer_accepted_wrong_one_rejected(key, registered, capsys):
    right, wrong = ch10.ANSWERS[key]
    assert exercises.is_correct(key, right)
    assert not exercises.is_correct(key, wrong)
    exercises.check(key, right)
    assert capsys.readouterr().out.strip() == f"[{key}] correct!"


def test_latency_exercise_cases_cover_the_variants_and_no_look_ahead():
    cases = ch10_latency._latency_cases()
    pairs = {(c["segment_length"], c["right_context_length"]) for c in cases}
    assert {(16, 4), (8, 4), (16, 0)} <= pairs and len(cases) >= 8
    assert ch10_latency._latency(16, 4) == (190.0, 115.0)


def test_paired_standard_error_is_that_of_the_differences():
    a, b, n = [3.0, 1.0, 6.0, 2.0], [2.0, 0.0, 5.0, 1.0], [20.0, 25.0, 30.0, 15.0]
    diff = [x - y for x, y in zip(a, b)]  # one more error on every sentence
    d = sum(diff) / sum(n)
    resid = [x - d * m for x, m in zip(diff, n)]
    mean = sum(resid) / 4
    sd = math.sqrt(sum((r - mean) ** 2 for r in resid) / 3)
    assert viz.cer_standard_error(a, n, baseline_errors=b) == pytest.approx(sd / (22.5 * 2))
    # the same model against itself: no difference, no spread
    assert viz.cer_standard_error(a, n, baseline_errors=a) == 0.0
    with pytest.raises(ValueError, match="baseline_errors"):
        viz.cer_standard_error(a, n, baseline_errors=b[:3])
