"""What notebook 10's prose says about the shipped variants' numbers (``train.variants.load_results()``).

The notebook explains the table in words; if the variants are trained or measured again and the numbers move,
these tests say which sentence of the notebook needs rewriting.
"""
import pytest

from emformer_edu import viz
from emformer_edu.train.variants import VARIANTS, load_results
from emformer_edu.transducer.streaming import latency_ms

GEOMETRY = ("baseline", "short segments", "no look-ahead", "no memory")


@pytest.fixture(scope="module")
def results():
    return load_results()


def test_results_follow_the_variants_order_and_hold_the_geometry_variants(results):
    assert list(results) == [n for n in VARIANTS if n in results]
    assert set(GEOMETRY) <= set(results)


def test_algorithmic_latency_is_the_geometrys(results):
    for row in results.values():
        assert row["latency_ms"]["average"] == latency_ms(row["segment_length"], row["right_context_length"])["average"]


def _paired(results, name):
    """(CER difference from the baseline, its paired standard error), as notebook 10 prints them."""
    base, row = results["baseline"], results[name]
    se = viz.cer_standard_error(row["char_errors"], base["ref_chars"], row["utterances"],
                                baseline_errors=base["char_errors"])
    return row["cer"] - base["cer"], se


def test_emitted_delay_hardly_moves_with_the_geometry(results):
    # "a mean of 29 to 33 ms before the word end in every row of the same loss"
    means = [results[n]["emitted_ms"]["mean"] for n in GEOMETRY]
    assert max(means) - min(means) < 10 and all(-33.5 < m < -28.5 for m in means), means
    # section 4: "this model already commits early: about 32 ms before the true word end on average"
    assert -33.5 < results["baseline"]["emitted_ms"]["mean"] < -30.5


def test_available_delay_moves_by_about_the_algorithmic_saving(results):
    # "halving the segment or dropping the look-ahead each saves some 40 ms on the mean"
    base = results["baseline"]
    for name in ("short segments", "no look-ahead"):
        saved = base["available_ms"]["mean"] - results[name]["available_ms"]["mean"]
        promised = base["latency_ms"]["average"] - results[name]["latency_ms"]["average"]
        assert abs(saved - promised) < 15, (name, saved, promised)
    # "shorter segments shrink the longest waits ... dropping the look-ahead saves the same 40 ms on every word"
    p90 = {n: base["available_ms"]["p90"] - results[n]["available_ms"]["p90"]
           for n in ("short segments", "no look-ahead")}
    assert p90["short segments"] > p90["no look-ahead"] + 10


def test_delays_pool_more_than_300_words_per_variant(results):
    # "the delays pool more than 300 words per variant (the last column)"
    assert all(row["words_right"] > 300 for row in results.values())


def test_only_dropping_the_look_ahead_costs_clearly_more_than_the_noise(results):
    # "one difference stands out: dropping the look-ahead, +3.8 ± 1.2 points of CER, well beyond one or two standard
    # errors" and, in section 3's last paragraph, "a WER of 31.7 % against 24.0 %"
    d, se = _paired(results, "no look-ahead")
    assert d > 2.5 * se and round(100 * d, 1) == 3.8 and round(100 * se, 1) == 1.2, (d, se)
    assert round(100 * results["no look-ahead"]["wer"], 1) == 31.7 and round(100 * results["baseline"]["wer"], 1) == 24.0
    # "Shorter segments (+0.9 ± 1.1) stay within one standard error"
    d, se = _paired(results, "short segments")
    assert abs(d) < se and round(100 * d, 1) == 0.9 and round(100 * se, 1) == 1.1, (d, se)
    # "no memory (+1.6 ± 1.0) within two ... between one and two standard errors, a hint ... rather than a measured cost"
    d, se = _paired(results, "no memory")
    assert se < d < 2 * se and round(100 * d, 1) == 1.6 and round(100 * se, 1) == 1.0, (d, se)


def test_memory_changes_no_latency(results):
    a, b = results["baseline"], results["no memory"]
    assert a["latency_ms"] == b["latency_ms"]
    assert abs(a["available_ms"]["mean"] - b["available_ms"]["mean"]) < 10


def test_fastemit_emits_a_little_earlier_at_the_same_cer(results):
    if "FastEmit" not in results:
        pytest.fail("results.json holds no FastEmit row, but notebook 10's prose discusses one")
    fe, base = results["FastEmit"], results["baseline"]
    # "the emitted times come a few milliseconds earlier (mean -32.5 -> -35.5 ms, 90th percentile 5.6 -> 2.5 ms)"
    for stat in ("mean", "p90"):
        assert -10 < fe["emitted_ms"][stat] - base["emitted_ms"][stat] < -1, stat
    assert (base["emitted_ms"]["mean"], fe["emitted_ms"]["mean"]) == (-32.5, -35.5)
    assert (base["emitted_ms"]["p90"], fe["emitted_ms"]["p90"]) == (5.6, 2.5)
    # "and the available times by less than a millisecond (68.9 -> 68.1 ms and 139.9 -> 139.3 ms)"
    for stat in ("mean", "p90"):
        assert -1 < fe["available_ms"][stat] - base["available_ms"][stat] < 0, stat
    assert (base["available_ms"]["mean"], fe["available_ms"]["mean"]) == (68.9, 68.1)
    assert (base["available_ms"]["p90"], fe["available_ms"]["p90"]) == (139.9, 139.3)
    # "FastEmit's CER is the baseline's: 11.3 against 11.4 %, and paired by sentence -0.0 ± 0.9 points"
    d, se = _paired(results, "FastEmit")
    assert abs(d) < se / 2 and round(100 * se, 1) == 0.9, (d, se)
    assert (round(100 * fe["cer"], 1), round(100 * base["cer"], 1)) == (11.3, 11.4)
    # "Its WER is higher, 25.6 against 24.0 % (346 instead of 354 of 454 words right)"
    assert (round(100 * fe["wer"], 1), round(100 * base["wer"], 1)) == (25.6, 24.0)
    assert (fe["words_right"], base["words_right"], fe["words"], base["words"]) == (346, 354, 454, 454)
