"""Chapter 11: its exercise table (right answers accepted, subtle wrong ones rejected) and its figures."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emformer_edu.teaching.exercises import ch11_memory  # noqa: E402
from emformer_edu.teaching.exercises.compare import matches  # noqa: E402
from emformer_edu.teaching.viz import pruned as viz_pruned  # noqa: E402
from exercise_answers import ch11  # noqa: E402


def _accepts(key, answer):
    ex = ch11_memory.EXERCISES[key]
    if ex.is_coding:
        torch.manual_seed(0)
        return all(matches(answer(**case), ex.compute(**case)) for case in ex.cases())
    return matches(answer, ex.compute())


def test_every_key_has_a_right_and_a_wrong_answer():
    assert set(ch11.ANSWERS) == set(ch11_memory.EXERCISES)
    assert any(ex.is_coding for ex in ch11_memory.EXERCISES.values())


@pytest.mark.parametrize("key", list(ch11.ANSWERS))
def test_right_answer_accepted_wrong_one_rejected(key):
    right, wrong = ch11.ANSWERS[key]
    assert _accepts(key, right)
    assert not _accepts(key, wrong)


def test_band_gather_cases_are_valid_bands():
    torch.manual_seed(0)
    for case in ch11_memory._band_gather_cases():
        U1 = case["predictor_out"].shape[1]
        assert int(case["starts"].min()) >= 0 and int(case["starts"].max()) + case["prune_range"] <= U1


def test_band_figure_hatches_exactly_the_nodes_outside_the_band():
    occ = torch.rand(6, 5)
    starts = torch.tensor([0, 0, 1, 1, 2, 2])
    ax = viz_pruned.band_figure(occ, starts, 3, title="band")
    hatched = [p for p in ax.patches if p.get_hatch() == "//"]
    assert len(hatched) == 6 * 5 - 6 * 3
    with pytest.raises(ValueError, match="starts must have 6"):
        viz_pruned.band_figure(occ, starts[:4], 3)
    plt.close("all")


def test_memory_growth_figure_and_its_errors():
    rows = [{"U": 10, "full MiB": 5.0, "pruned MiB": 1.0}, {"U": 20, "full MiB": 9.0, "pruned MiB": 1.5}]
    fig = viz_pruned.memory_growth_figure(rows, "U")
    assert [line.get_label() for line in fig.axes[0].lines] == ["full", "pruned"]
    with pytest.raises(ValueError, match="rows must not be empty"):
        viz_pruned.memory_growth_figure([], "U")
    plt.close("all")


def test_loss_steps_agree_on_the_full_loss_and_reject_unknown_names():
    sizes = dict(B=2, T=6, U=3, V=7, D=4, S=4)  # S = U + 1: the pruned loss is the full one
    edu, ta, pr = (viz_pruned.loss_step(impl, **sizes)() for impl in viz_pruned.LOSS_STEPS)
    assert edu == pytest.approx(ta, rel=1e-5)
    # The pruned step's own joiner is the same module, seeded alike: same logits, same loss.
    assert pr == pytest.approx(edu, rel=1e-5)
    with pytest.raises(ValueError, match="impl must be one of"):
        viz_pruned.loss_step("nope", **sizes)


def test_peak_memory_sees_a_large_temporary_tensor():
    n = 64 * 2**20  # bytes
    grown = viz_pruned.peak_memory_bytes(lambda: torch.ones(n // 4).sum())
    assert n * 0.9 < grown < n * 2
