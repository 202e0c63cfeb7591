"""A small Emformer RNN-T trained on the synthetic corpus, shipped with the package.

::

    from emformer_edu.train import pretrained
    toy = pretrained.toy()                      # model (eval mode), features, vocabulary, config
    utt = toy.held_out(1)[0]                    # an utterance it has never seen
    toy.recognize(utt.waveform)                 # 'fbjq...' (full context, beam search)
    toy.recognize(utt.waveform, streaming=True) # chunk by chunk, as a live recognizer

The files live in ``emformer_edu/train/assets/`` and were written by
``python -m emformer_edu.train --export emformer_edu/train/assets`` (see :mod:`emformer_edu.train.cli`):

* ``toy_emformer_rnnt.pt``: float32 ``state_dict``;
* ``toy_global_stats.json``: feature statistics (torchaudio's ``global_stats.json`` layout);
* ``toy_config.json``: the ``emformer_rnnt_model`` arguments (``EmformerRNNTConfig.toy()``), the
  vocabulary, the synthetic corpus settings it was trained on and the training settings and results.

:func:`load` reads them through the guarded readers of :mod:`emformer_edu.train.checkpoints`, so a
missing, empty or corrupt file raises an error that names it.

``tests/test_pretrained.py`` decodes held-out utterances with these files on every run, so the
checkpoint and the code cannot drift apart unnoticed.

Notation: N samples, T frames, R right context, F mel bins, U target length.
"""
import os
from dataclasses import dataclass
from importlib import resources
from typing import Dict, List, Optional, Tuple

import torch

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from ..rnnt.beam_search import RNNTBeamSearch
from ..rnnt.greedy import greedy_decode
from ..rnnt.recognize import decode_streaming
from ..transducer.model import RNNT, build_model
from ..transducer.streaming import streaming_chunks
from .checkpoints import ASSET_FILES, load_weights, read_json, read_state_dict, read_stats, synthetic_config
from .metrics import TERResult, evaluate

__all__ = ["Pretrained", "load", "toy", "load_weights", "HELD_OUT_SEED", "ASSET_FILES"]

HELD_OUT_SEED = 2  # training used seed 0 and validation seed 1: seed 2 is data no step ever saw


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
        return synthetic_config(self.config["synthetic"])

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
        """An :class:`~emformer_edu.rnnt.beam_search.RNNTBeamSearch` for this model (torchaudio's interface)."""
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


def load(weights: str, stats: str, config: str, model: Optional[RNNT] = None) -> Pretrained:
    """Load a model exported by :func:`emformer_edu.train.export_assets`.

    Args:
        weights, stats, config: paths of the ``.pt`` state_dict, the stats JSON and the config JSON.
        model: load into this model instead of building one from the config. Its ``config``
            must match; otherwise ``ValueError`` names the differing settings and parameters.
    Raises:
        FileNotFoundError: a file is missing (the message names it).
        ValueError: a file is unreadable (empty, corrupt, not JSON, not a state_dict) or the files
            do not fit together (e.g. weights of another configuration); the message names the file.
    """
    cfg = read_json(config, "model config")
    for key in ("model", "vocabulary"):
        if key not in cfg:
            raise ValueError(f"model config {config!r} has no {key!r} entry; was it written by export_assets?")
    try:
        model_config = EmformerRNNTConfig.from_dict(cfg["model"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"model config {config!r}: {err}") from err
    vocab = Vocabulary(tuple(cfg["vocabulary"]))
    if model_config.num_symbols != vocab.num_symbols:
        raise ValueError(
            f"model config {config!r}: num_symbols {model_config.num_symbols} does not fit the vocabulary "
            f"of {vocab.num_tokens} tokens + blank."
        )
    state_dict = read_state_dict(weights)
    global_stats = read_stats(stats, num_mel_bins=model_config.input_dim)
    if model is None:
        model = build_model(model_config)
    load_weights(model, state_dict, source=repr(weights), config=model_config)
    model.eval()
    extractor = FeatureExtractor(global_stats, right_padding=model_config.right_context_length)
    return Pretrained(model, extractor, vocab, cfg)


def toy() -> Pretrained:
    """The toy model shipped in ``emformer_edu/train/assets/``: a 3-layer streaming Emformer RNN-T
    (memory, left and right context) trained on the default :class:`SyntheticConfig`."""
    assets = resources.files("emformer_edu.train") / "assets"
    with resources.as_file(assets) as directory:
        paths = {k: os.path.join(directory, v.format(name="toy")) for k, v in ASSET_FILES.items()}
        return load(paths["weights"], paths["stats"], paths["config"])
