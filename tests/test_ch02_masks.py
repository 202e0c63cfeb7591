"""Chapter 02: the mask figures draw the library's masks, masked cells in the masked colour; the
mask_row exercise's expected rows are training_mask's rows; the summary-memory claim holds."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import emformer_edu
from emformer_edu import exercises, viz
from emformer_edu.encoder.masks import training_mask
from emformer_edu.teaching.exercises import EXERCISES


def _image(ax):
    return ax.images[0].get_array()


def test_plot_mask_draws_masked_cells_in_the_masked_colour():
    mask = training_mask(12, 4, 2, 4, 2)
    ax = viz.plot_mask(mask)
    image = _image(ax)
    assert np.array_equal(np.ma.getmaskarray(image), mask.blocked.numpy())
    assert (image.data[~mask.blocked.numpy()] == 1).all()
    assert matplotlib.colors.to_hex(ax.images[0].get_cmap().get_bad()) == viz.MASKED_COLOUR.lower()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "may attend" and labels[1].startswith("masked")
    plt.close("all")


def test_first_row_and_segment_rows_are_views_of_the_training_mask():
    mask = training_mask(13, 4, 2, 5, 3)
    for i in range(4):
        for kind in ("right_context", "utterance", "summary"):
            row = mask.first_row(kind, i)
            block = next(b for b in mask.rows if b.kind == kind and b.segment == i)
            assert row == block.start
        part = viz.segment_rows(mask, i)
        rows = [r for b in mask.rows if b.segment == i for r in range(b.start, b.stop)]
        assert torch.equal(part.blocked, mask.blocked[rows])
        assert [b.label for b in part.rows] == [f"rc{i}", f"seg{i}", f"s{i}"]
    with pytest.raises(ValueError):
        training_mask(8, 4, 0, 0, 0).first_row("summary", 0)


def test_segment_rows_figure_one_panel_per_segment_with_its_key_sets():
    fig = viz.segment_rows_figure(12, 4, 2, left_context_length=4, max_memory_size=2)
    assert len(fig.axes) == 3
    mask = training_mask(12, 4, 2, 4, 2)
    for i, ax in enumerate(fig.axes):
        assert np.array_equal(np.ma.getmaskarray(_image(ax)), viz.segment_rows(mask, i).blocked.numpy())
    assert "memory m0 | rc1 | frames 0–7" in fig.axes[1].get_title()
    plt.close("all")


def test_attention_heads_share_one_colour_scale_and_grey_out_masked_keys():
    torch.manual_seed(0)
    model = emformer_edu.Emformer(8, 2, 16, 1, 4, left_context_length=4, right_context_length=2,
                                  max_memory_size=2).eval()
    with emformer_edu.record() as rec:
        model(torch.randn(1, 14, 8), torch.tensor([14]))
    layer = rec.calls[0].layers[0]
    fig = viz.attention_heads_figure(layer)
    heads = [ax for ax in fig.axes if ax.images and ax.get_title().startswith("head")]
    assert len(heads) == 2
    assert len({ax.images[0].get_clim() for ax in heads}) == 1
    assert heads[0].images[0].get_clim() == (0, float(layer.attention_probs.max()))
    for h, ax in enumerate(heads):
        image = _image(ax)
        torch.testing.assert_close(torch.as_tensor(image.data), layer.attention_probs[0, h], check_dtype=False)
        assert np.array_equal(np.ma.getmaskarray(image), layer.attention_mask.blocked.numpy())
    plt.close("all")


def test_mask_comparison_without_baseline():
    base = dict(utterance_length=8, segment_length=4, right_context_length=2, left_context_length=2, max_memory_size=1)
    fig = viz.mask_comparison_figure(base, {"right_context_length": 0}, baseline=False)
    assert [ax.get_title() for ax in fig.axes] == ["right_context_length=0"]
    plt.close("all")


def test_mask_row_expected_rows_are_training_mask_rows():
    entry = EXERCISES["02.mask_row"]
    cases = entry.cases()
    assert len(cases) == 40 and cases == entry.cases()  # the same cases every time
    assert {c["kind"] for c in cases} == {"right_context", "utterance", "summary"}
    assert any(c["max_memory_size"] == 0 for c in cases) and any(c["right_context_length"] == 0 for c in cases)
    for case, row in exercises.expected("02.mask_row"):
        mask = training_mask(case["utterance_length"], case["segment_length"], case["right_context_length"],
                             case["left_context_length"], case["max_memory_size"])
        block = next(b for b in mask.rows if b.kind == case["kind"] and b.segment == case["segment"])
        for r in range(block.start, block.stop):  # every row of the block is the same row
            assert torch.equal(row, mask.allowed[r])


def test_summary_never_reads_memory_so_written_memory_ignores_the_bank():
    """The notebook's claim: with torchaudio's mask, the memory a layer writes does not depend on the bank it reads."""
    torch.manual_seed(0)
    model = emformer_edu.Emformer(8, 2, 16, 1, 4, left_context_length=4, right_context_length=2,
                                  max_memory_size=2).eval()
    layer, mask = model.emformer_layers[0], training_mask(12, 4, 2, 4, 2)
    utterance, rc = torch.randn(12, 1, 8), torch.randn(6, 1, 8)
    with torch.no_grad():
        out_a, _, mem_a = layer(utterance, torch.tensor([12]), rc, torch.randn(2, 1, 8), mask)
        out_b, _, mem_b = layer(utterance, torch.tensor([12]), rc, torch.randn(2, 1, 8), mask)
    assert torch.equal(mem_a, mem_b)
    assert not torch.allclose(out_a, out_b)
