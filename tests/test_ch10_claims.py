"""What notebook 10's prose says about the shipped variants' numbers (``train.variants.load_results()``).

The notebook explains the table in words; if the variants are trained or measured again and the numbers move,
these tests say which sentence of the notebook needs rewriting.
"""
import pytest

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


def test_emitted_delay_hardly_moves_with_the_geometry(results):
    # "a mean of about 20 ms before the word end in every row of the same loss"
    means = [results[n]["emitted_ms"]["mean"] for n in GEOMETRY]
    assert max(means) - min(means) < 10 and all(-30 < m < -10 for m in means)


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


def test_memory_changes_no_latency(results):
    a, b = results["baseline"], results["no memory"]
    assert a["latency_ms"] == b["latency_ms"]
    assert abs(a["available_ms"]["mean"] - b["available_ms"]["mean"]) < 10


def test_fastemit_emits_a_little_earlier_and_costs_accuracy(results):
    if "FastEmit" not in results:
        pytest.fail("results.json holds no FastEmit row, but notebook 10's prose discusses one")
    fe, base = results["FastEmit"], results["baseline"]
    # "a few milliseconds earlier (mean and 90th percentile, emitted and available alike)"
    for key in ("emitted_ms", "available_ms"):
        for stat in ("mean", "p90"):
            assert -15 < fe[key][stat] - base[key][stat] < 0, (key, stat)
    # "FastEmit's CER is a couple of points above the baseline's"
    assert 0.01 < fe["cer"] - base["cer"] < 0.05
