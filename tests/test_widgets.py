"""Widgets are driven by setting control values; their figures follow."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from emformer_edu import viz
from emformer_edu.teaching import widgets


def _image(widget):
    return widget.figure.axes[0].images[0].get_array()


def test_mask_explorer_redraws_on_every_slider():
    w = widgets.mask_explorer(utterance_length=12, segment_length=4, right_context_length=2,
                              left_context_length=4, max_memory_size=2)
    # 3 segments: rows 3*2 + 12 + 3, cols 2 + 3*2 + 12
    assert _image(w).shape == (21, 20)
    w.controls["right_context_length"].value = 0
    assert _image(w).shape == (15, 14)
    w.controls["max_memory_size"].value = 0
    assert _image(w).shape == (12, 12)
    before = np.array(_image(w))
    w.controls["left_context_length"].value = 0
    assert _image(w).shape == (12, 12) and _image(w).sum() < before.sum()
    w.controls["segment_length"].value = 6
    w.controls["utterance_length"].value = 13
    assert "T=13, segment=6, R=0, L=0, M=0" in w.figure.axes[0].get_title()
    assert w.values == dict(utterance_length=13, segment_length=6, right_context_length=0,
                            left_context_length=0, max_memory_size=0)


def test_chunk_stepper_moves_highlight():
    w = widgets.chunk_stepper(num_frames=44, segment_length=8, right_context_length=4, left_context_length=8)
    assert w.controls["chunk_index"].max == 4
    legend = lambda: [t.get_text() for t in w.figure.axes[0].get_legend().get_texts()]
    assert legend() == ["segment [0, 8)", "right context [8, 12)"]
    w.controls["chunk_index"].value = 2
    assert legend() == ["left context [8, 16)", "segment [16, 24)", "right context [24, 28)"]
    w.controls["chunk_index"].value = 4
    assert legend() == ["left context [24, 32)", "segment [32, 40)", "right context [40, 44)"]


def test_chunk_figure_rejects_bad_chunk():
    with pytest.raises(ValueError, match=r"chunk_index must be in \[0, 4\]"):
        viz.chunk_figure(44, 8, 4, 8, chunk_index=5)


def test_the_output_area_holds_the_current_figure_as_a_png():
    """The figure lives in the Output widget's state, so a notebook saved with widget state shows it statically."""
    import base64
    w = widgets.mask_explorer(utterance_length=12, segment_length=4, right_context_length=2,
                              left_context_length=4, max_memory_size=2)
    (first,) = w.output.outputs
    assert first["output_type"] == "display_data"
    assert base64.b64decode(first["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    w.controls["segment_length"].value = 3
    (second,) = w.output.outputs  # replaced, not appended
    assert second["data"]["image/png"] != first["data"]["image/png"]


def test_every_slider_gets_a_usable_track():
    """Issue 12: five sliders at their default width in one row left 23-63 px tracks at a 1280 px
    window. Each slider now has a fixed width (its track keeps >= 200 px after label and readout) in a
    row that wraps; tests/test_browser.py measures the tracks in JupyterLab."""
    import ipywidgets
    w = widgets.mask_explorer()
    row, output = w.box.children
    assert output is w.output
    assert isinstance(row, ipywidgets.HBox) and row.layout.flex_flow == "row wrap"
    assert list(row.children) == list(w.controls.values())
    assert widgets.SLIDER_WIDTH_PX >= 400
    for name, slider in w.controls.items():
        assert slider.layout.width == f"{widgets.SLIDER_WIDTH_PX}px", name
    # A widget's only slider takes the whole row.
    stepper = widgets.chunk_stepper(num_frames=44, segment_length=8, right_context_length=4, left_context_length=8)
    layout = stepper.controls["chunk_index"].layout
    assert (layout.width, layout.max_width) == ("100%", f"{2 * widgets.SLIDER_WIDTH_PX}px")
