"""Interactive widgets for the notebooks.

Every widget is a :class:`FigureWidget`: a row of controls and an output area that shows
``callback(**control values)``, where the callback is a plain library function returning a
matplotlib figure (``emformer_edu.viz``). Tests drive widgets by setting control values and
inspecting ``widget.figure`` and ``widget.values``.

The figure goes into the output area as its PNG, set on the ``Output`` widget's ``outputs`` from
the kernel (not printed inside ``with output:``). So the widget's state holds the figure it shows,
and a notebook saved with its widget state (``tools/execute_notebooks.py`` stores it) shows the
controls and the figure in a static view (GitHub, nbconvert), not ``VBox(...)``.

:class:`LiveRecogniser` (notebook 00) works the same way, with an audio player and the growing
transcript in its output area beside the figure.
"""
import base64
from typing import Callable, Dict

import ipywidgets
import matplotlib.pyplot as plt
from IPython.core.pylabtools import print_figure
from IPython.display import Audio, display
from IPython.display import display as show

from ..encoder.segments import num_segments
from ..train.trainer import TrainEvent
from . import live, viz


class FigureWidget:
    """Controls plus an output that redraws ``callback(**values)`` whenever a control changes."""

    def __init__(self, callback: Callable[..., "plt.Figure"], controls: Dict[str, ipywidgets.Widget], **fixed):
        self.callback, self.controls, self.fixed = callback, controls, fixed
        self.output = ipywidgets.Output()
        self.figure = None
        for control in controls.values():
            control.observe(self._redraw, names="value")
        self.box = ipywidgets.VBox([controls_row(list(controls.values())), self.output])
        self._redraw()

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def _redraw(self, change=None) -> None:
        figure = self.callback(**self.fixed, **self.values)
        self.output.outputs = (figure_output(figure),)
        plt.close(figure)  # shown through the Output widget only, not again at cell end
        self.figure = figure

    def _ipython_display_(self):
        display(self.box)


def figure_output(figure: "plt.Figure") -> dict:
    """``figure`` as one notebook ``display_data`` output (a PNG, as the inline backend draws it)."""
    png = print_figure(figure, "png", bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<Figure>"}}


# Each slider gets this much width; after its label and readout the track keeps >= 200 px (227-267 px
# measured in JupyterLab at a 1280 px window), so one step of a 0..32 slider is several pixels of drag.
# Five sliders in one row at their default width left 23-63 px tracks (issue 12).
SLIDER_WIDTH_PX = 420


def controls_row(controls: list) -> ipywidgets.HBox:
    """The controls in a row that wraps: as many full-width sliders per line as the output area holds."""
    return ipywidgets.HBox(controls, layout=ipywidgets.Layout(flex_flow="row wrap"))


def _slider(description: str, value: int, lo: int, hi: int, alone: bool = False) -> ipywidgets.IntSlider:
    """``alone``: the widget's only control, so it takes the whole row (up to twice the usual width)."""
    layout = (ipywidgets.Layout(width="100%", max_width=f"{2 * SLIDER_WIDTH_PX}px") if alone
              else ipywidgets.Layout(width=f"{SLIDER_WIDTH_PX}px"))
    return ipywidgets.IntSlider(value=value, min=lo, max=hi, description=description, continuous_update=False,
                                style={"description_width": "initial"}, layout=layout)


def mask_explorer(utterance_length: int = 12, segment_length: int = 4, right_context_length: int = 2,
                  left_context_length: int = 4, max_memory_size: int = 2) -> FigureWidget:
    """Sliders for every mask argument; redraws :func:`emformer_edu.viz.mask_figure`."""
    return FigureWidget(viz.mask_figure, {
        "utterance_length": _slider("utterance T", utterance_length, 1, 32),
        "segment_length": _slider("segment", segment_length, 1, 12),
        "right_context_length": _slider("right context R", right_context_length, 0, 6),
        "left_context_length": _slider("left context L", left_context_length, 0, 16),
        "max_memory_size": _slider("memory M", max_memory_size, 0, 6),
    })


def chunk_stepper(num_frames: int, segment_length: int, right_context_length: int, left_context_length: int,
                  **figure_kwargs) -> FigureWidget:
    """A slider over chunks of an utterance; redraws :func:`emformer_edu.viz.chunk_figure`.

    ``figure_kwargs`` (``log_mel``, ``token_spans``, ``token_names``) are passed through unchanged.
    """
    last = num_segments(num_frames - right_context_length, segment_length) - 1
    return FigureWidget(viz.chunk_figure, {"chunk_index": _slider("chunk", 0, 0, last, alone=True)},
                        num_frames=num_frames, segment_length=segment_length,
                        right_context_length=right_context_length, left_context_length=left_context_length,
                        **figure_kwargs)


def lattice_explorer(pretrained, num_utterances: int = 20, seed=None, index: int = 0) -> FigureWidget:
    """A slider over held-out utterances; redraws :func:`emformer_edu.viz.utterance_lattice_figure`
    (the trained model's posterior occupancy, Viterbi path and the true token spans)."""
    return FigureWidget(viz.utterance_lattice_figure, {"index": _slider("held-out utterance", index, 0, num_utterances - 1, alone=True)},
                        pretrained=pretrained, num_utterances=num_utterances, seed=seed)


def variant_explorer(variants: dict, utterance, variant=None) -> FigureWidget:
    """A menu over latency variants (``{name: Pretrained}``, notebook 10); redraws
    :func:`emformer_edu.viz.variant_figure`: that variant's streaming emissions and lattice of ``utterance``
    against the true word spans and its chunk boundaries."""
    names = list(variants)
    if not names:
        raise ValueError("variants holds no model.")
    if variant is not None and variant not in names:
        raise ValueError(f"unknown variant {variant!r}; variants: {names}.")
    menu = ipywidgets.Dropdown(options=names, value=variant or names[0], description="variant")
    return FigureWidget(viz.variant_figure, {"variant": menu}, variants=variants, utterance=utterance)


def _text_output(text: str) -> dict:
    """``text`` as one notebook ``stream`` output (what ``print`` writes)."""
    return {"output_type": "stream", "name": "stdout", "text": text if text.endswith("\n") else text + "\n"}


def audio_output(waveform, rate: int = 16000) -> dict:
    """``waveform`` as one ``display_data`` output holding an :class:`IPython.display.Audio` player."""
    audio = Audio(waveform.detach().cpu().numpy(), rate=rate)
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": audio._repr_html_(), "text/plain": "<IPython.lib.display.Audio object>"}}


class LiveRecogniser:
    """Type a sentence, pick a voice: the output plays the audio, prints the transcript after every
    streaming chunk and draws the lattice (:func:`emformer_edu.teaching.live.live_recognition` and
    :func:`~emformer_edu.teaching.live.live_figure`). A sentence that cannot be spoken (digits,
    punctuation, an eSpeak failure) shows its error in the output instead of the figure.

    After every change: ``result`` (a :class:`~emformer_edu.teaching.live.LiveResult`, ``None`` after an
    error), ``figure``, ``error`` (the message, or ``None``) and ``output.outputs`` (audio, text, figure,
    set from the kernel as :class:`FigureWidget` does, so the saved widget state shows them).
    """

    def __init__(self, pretrained, text: str = live.DEFAULT_TEXT, voice: str = live.DEFAULT_VOICE):
        self.pretrained = pretrained
        choices = live.voice_choices(pretrained)
        if voice not in [v for _, v in choices]:
            choices.append((voice, voice))
        self.controls = {
            "text": ipywidgets.Text(value=text, description="sentence", continuous_update=False,
                                    layout=ipywidgets.Layout(width="55%")),
            "voice": ipywidgets.Dropdown(options=choices, value=voice, description="voice"),
        }
        self.output = ipywidgets.Output()
        self.result, self.figure, self.error = None, None, None
        for control in self.controls.values():
            control.observe(self._run, names="value")
        self.box = ipywidgets.VBox([ipywidgets.HBox(list(self.controls.values())), self.output])
        self._run()

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def _run(self, change=None) -> None:
        try:
            result = live.live_recognition(self.values["text"], self.values["voice"], self.pretrained)
            figure = live.live_figure(result)
        except Exception as err:  # the learner's sentence: show why, do not break the widget
            self.result, self.figure = None, None
            self.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
            self.output.outputs = (_text_output(f"cannot recognise this sentence: {self.error}"),)
            return
        self.output.outputs = (audio_output(result.waveform), _text_output(result.report()), figure_output(figure))
        plt.close(figure)  # shown through the Output widget only
        self.result, self.figure, self.error = result, figure, None

    def _ipython_display_(self):
        display(self.box)


def live_recogniser(pretrained, text: str = live.DEFAULT_TEXT, voice: str = live.DEFAULT_VOICE) -> LiveRecogniser:
    """The live recogniser of notebook 00: a sentence box (``continuous_update=False``: it runs when you
    press Enter) and a voice menu (the held-out voices and a few training ones); see :class:`LiveRecogniser`."""
    return LiveRecogniser(pretrained, text, voice)

class WidgetProgress:
    """A progress callback that draws an ``ipywidgets`` bar and a text line instead of stderr output.

    Notebooks should not print ``tqdm`` bars (they end up in stderr and in saved outputs)::

        progress = WidgetProgress()          # displays the widget
        Trainer(config, callback=progress, progress=False).fit()
    """

    def __init__(self, display: bool = True):
        self.bar = ipywidgets.IntProgress(min=0, max=1, description="train")
        self.label = ipywidgets.Label()
        self.widget = ipywidgets.HBox([self.bar, self.label])
        if display:
            show(self.widget)

    def __call__(self, event: TrainEvent) -> None:
        self.bar.max = event.total_steps
        self.bar.value = event.step
        ter = "" if event.ter is None else f", held-out TER {100 * event.ter:.1f}%"
        if event.kind != "step" or event.step % 10 == 0:
            self.label.value = f"step {event.step}/{event.total_steps}, loss {event.loss:.3f}{ter}, {event.elapsed_s:.0f} s"
