"""A small Emformer RNN-T trained on the synthetic corpus, shipped with the package.

::

    import emformer_edu.pretrained as pretrained
    toy = pretrained.toy()                      # model (eval mode), features, vocabulary, config
    utt = toy.held_out(1)[0]                    # an utterance it has never seen
    toy.recognize(utt.waveform)                 # 'fbjq...' (full context, beam search)
    toy.recognize(utt.waveform, streaming=True) # chunk by chunk, as a live recognizer

The files live in ``emformer_edu/assets/`` and were written by
``python -m emformer_edu.train --export emformer_edu/assets`` (see :mod:`emformer_edu.train`):

* ``toy_emformer_rnnt.pt``: float32 ``state_dict``;
* ``toy_global_stats.json``: feature statistics (torchaudio's ``global_stats.json`` layout);
* ``toy_config.json``: the ``emformer_rnnt_model`` arguments, the vocabulary, the synthetic
  corpus settings it was trained on and the training settings and results.

``tests/test_pretrained.py`` decodes held-out utterances with these files on every run, so the
checkpoint and the code cannot drift apart unnoticed.

Notation: N samples, T frames, R right context, F mel bins, U target length.
"""
import dataclasses
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Dict, List, Optional, Tuple

import torch

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor, GlobalStats
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from ..rnnt.beam_search import RNNTBeamSearch
from ..rnnt.greedy import greedy_decode
from ..rnnt.recognize import decode_streaming
from ..transducer.model import RNNT, build_model
from ..transducer.streaming import streaming_chunks
from .metrics import TERResult, evaluate

__all__ = ["Pretrained", "load", "toy", "load_weights", "HELD_OUT_SEED", "ASSET_FILES"]

HELD_OUT_SEED = 2  # training used seed 0 and validation seed 1: seed 2 is data no step ever saw
# File names written by emformer_edu.train.export_assets.
ASSET_FILES = {"weights": "{name}_emformer_rnnt.pt", "stats": "{name}_global_stats.json", "config": "{name}_config.json"}


def load_weights(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], source: str = "checkpoint",
                 config: Optional[Dict] = None) -> None:
    """``model.load_state_dict(state_dict)``, but a mismatch raises one ``ValueError`` naming it.

    Args:
        source: how to name the weights in the message (e.g. the file path).
        config: the :class:`EmformerRNNTConfig` saved with the weights; if the model carries a ``config``
            (every factory-built model does) the differing keys are named first, since a
            different config is the usual cause.
    Lists the differing config values, missing and unexpected parameter names, and every
    parameter whose shape differs (``name: checkpoint (a, b) vs model (c, d)``).
    """
    problems = []
    model_config = getattr(model, "config", None)
    if config is not None and model_config is not None:
        as_dict = lambda c: c if isinstance(c, dict) else dataclasses.asdict(c)  # noqa: E731
        config, model_config = as_dict(config), as_dict(model_config)
        diff = {k: (config.get(k), model_config.get(k)) for k in sorted(set(config) | set(model_config))
                if config.get(k) != model_config.get(k)}
        if diff:
            problems.append("config differs: " + ", ".join(f"{k}: {source} {a!r} vs model {b!r}" for k, (a, b) in diff.items()))
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: {source} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing:
        problems.append(f"missing from {source}: {missing}")
    if unexpected:
        problems.append(f"unexpected in {source}: {unexpected}")
    if shapes:
        problems.append("shape mismatch: " + "; ".join(shapes))
    if problems:
        raise ValueError(f"{source} does not match the model. " + " | ".join(problems))
    model.load_state_dict(state_dict)


@dataclass
class Pretrained:
    """A trained model with everything needed to use it.

    model: :class:`~emformer_edu.transducer.RNNT` in eval mode. feature_extractor: with the
    training statistics and ``right_padding = R``. vocab: token names (blank = last id).
    config: the parsed ``*_config.json``.
    """

    model: RNNT
    feature_extractor: FeatureExtractor
    vocab: Vocabulary
    config: Dict

    @property
    def blank(self) -> int:
        return self.vocab.blank

    @property
    def segment_length(self) -> int:
        """Input frames per streaming chunk, before the look-ahead."""
        return self.model.transcriber.segment_length

    @property
    def right_context_length(self) -> int:
        """R: look-ahead input frames at the end of each chunk."""
        return self.model.transcriber.right_context_length

    @property
    def synthetic_config(self) -> SyntheticConfig:
        """The corpus settings the model was trained on (pass them to make comparable data)."""
        cfg = self.config["synthetic"]
        return SyntheticConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})

    def held_out(self, num_utterances: int = 100, seed: int = HELD_OUT_SEED) -> SyntheticSpeechDataset:
        """Synthetic utterances from the training language that training never saw."""
        return SyntheticSpeechDataset(num_utterances, seed=seed, config=self.synthetic_config)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform ``(N,)`` at 16 kHz -> features ``(T + R, F)``, ready for ``transcribe``."""
        return self.feature_extractor(waveform)[0]

    def chunks(self, features: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``(T + R, F)`` -> ``[(chunk (1, segment_length + R, F), length (1,)), ...]`` for
        ``model.transcribe_streaming`` (see :func:`emformer_edu.transducer.streaming.streaming_chunks`)."""
        return streaming_chunks(features, self.segment_length, self.right_context_length)

    def beam_search(self) -> RNNTBeamSearch:
        """An :class:`~emformer_edu.decoding.RNNTBeamSearch` for this model (torchaudio's interface)."""
        return RNNTBeamSearch(self.model, self.blank)

    @torch.no_grad()
    def recognize(self, waveform: torch.Tensor, beam_width: int = 4, streaming: bool = False) -> str:
        """Waveform ``(N,)`` -> recognized text (token names), by beam search (``beam_width=None``: greedy)."""
        feats = self.features(waveform)
        if streaming:
            tokens, _ = decode_streaming(self.model, feats, self.blank, beam_width)
        elif beam_width is None:
            T = torch.tensor([feats.size(0) - self.right_context_length])
            tokens = greedy_decode(self.model, feats.unsqueeze(0), T, self.blank)[0][0]
        else:
            T = torch.tensor(feats.size(0) - self.right_context_length)
            tokens = self.beam_search()(feats, T, beam_width)[0].tokens[1:]
        return self.vocab.decode(tokens)

    def evaluate(self, num_utterances: int = 100, beam_width: Optional[int] = 4, streaming: bool = False,
                 seed: int = HELD_OUT_SEED) -> TERResult:
        """TER on ``num_utterances`` held-out utterances (see :func:`emformer_edu.train.metrics.evaluate`)."""
        data = self.held_out(num_utterances, seed)
        return evaluate(self.model, [data[i] for i in range(len(data))], self.feature_extractor, self.blank,
                        beam_width=beam_width, streaming=streaming)


def _read_json(path: str, what: str) -> Dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path!r} (no such file).")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{what} {path!r} is not valid JSON: {err}") from err


def load(weights: str, stats: str, config: str, model: Optional[RNNT] = None) -> Pretrained:
    """Load a model exported by :func:`emformer_edu.train.export_assets`.

    Args:
        weights, stats, config: paths of the ``.pt`` state_dict, the stats JSON and the config JSON.
        model: load into this model instead of building one from the config. Its ``config``
            must match; otherwise ``ValueError`` names the differing settings and parameters.
    Raises:
        FileNotFoundError: a file is missing (the message names it).
        ValueError: the files do not fit together (e.g. weights of another configuration).
    """
    cfg = _read_json(config, "model config")
    for key in ("model", "vocabulary"):
        if key not in cfg:
            raise ValueError(f"model config {config!r} has no {key!r} entry; was it written by export_assets?")
    for path, what in ((weights, "model weights"), (stats, "feature statistics")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{what} not found: {path!r} (no such file).")
    state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    vocab = Vocabulary(tuple(cfg["vocabulary"]))
    model_config = EmformerRNNTConfig.from_dict(cfg["model"])
    if model_config.num_symbols != vocab.num_symbols:
        raise ValueError(
            f"model config {config!r}: num_symbols {cfg['model'].get('num_symbols')} does not fit the vocabulary "
            f"of {vocab.num_tokens} tokens + blank."
        )
    if model is None:
        model = build_model(model_config)
    load_weights(model, state_dict, source=repr(weights), config=model_config)
    model.eval()
    R = cfg["model"]["right_context_length"]
    extractor = FeatureExtractor(GlobalStats.load(stats), right_padding=R)
    return Pretrained(model, extractor, vocab, cfg)


def toy() -> Pretrained:
    """The toy model shipped in ``emformer_edu/assets/``: a 3-layer streaming Emformer RNN-T
    (memory, left and right context) trained on the default :class:`SyntheticConfig`."""
    assets = resources.files("emformer_edu.train") / "assets"
    with resources.as_file(assets) as directory:
        paths = {k: os.path.join(directory, v.format(name="toy")) for k, v in ASSET_FILES.items()}
        return load(paths["weights"], paths["stats"], paths["config"])
