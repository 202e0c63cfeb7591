"""Small Emformer RNN-Ts shipped with the package: one for the synthetic corpus, one for spoken English.

::

    from emformer_edu.train import pretrained
    toy = pretrained.toy()                      # model (eval mode), features, vocabulary, config
    utt = toy.held_out(1)[0]                    # an utterance it has never seen
    toy.recognize(utt.waveform)                 # 'fbjq...' (full context, beam search)
    toy.recognize(utt.waveform, streaming=True) # chunk by chunk, as a live recognizer

    spoken = pretrained.spoken()                # characters of eSpeak NG sentences
    utt = spoken.held_out(1)[0]                 # a test sentence, spoken by a voice training never heard
    spoken.recognize(utt.waveform, beam_width=None, streaming=True)  # greedy, chunk by chunk: 'seven blue ...'
    spoken.lexicon, spoken.test_voices          # the words sentences are made of; the held-out voices

The files live in ``emformer_edu/train/assets/`` and were written by
``python -m emformer_edu.train --export emformer_edu/train/assets`` (``--corpus spoken --name spoken``
for the second; see :mod:`emformer_edu.train.cli`):

* ``{name}_emformer_rnnt.pt``: float32 ``state_dict``;
* ``{name}_global_stats.json``: feature statistics (torchaudio's ``global_stats.json`` layout);
* ``{name}_config.json``: the ``emformer_rnnt_model`` arguments, the vocabulary, the corpus
  (``"corpus"``) and its settings it was trained on, and the training settings and results
  (``training["history"]``: the learning curve). A file without ``"corpus"`` is a synthetic one.

:func:`load` reads them through the guarded readers of :mod:`emformer_edu.train.checkpoints`, so a
missing, empty or corrupt file raises an error that names it.

``tests/test_pretrained.py`` decodes held-out utterances with these files on every run, so the
checkpoint and the code cannot drift apart unnoticed.

Notation: N samples, T frames, R right context, F mel bins, U target length.
"""
import os
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import SAMPLE_RATE, FeatureExtractor
from ..data.spoken import SpokenConfig, SpokenDataset, listening_condition
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from ..rnnt.beam_search import RNNTBeamSearch
from ..rnnt.greedy import greedy_decode
from ..rnnt.recognize import decode_streaming
from ..transducer.model import RNNT, build_model
from ..transducer.streaming import streaming_chunks
from . import corpora
from .checkpoints import ASSET_FILES, load_weights, read_json, read_state_dict, read_stats
from .metrics import TERResult, evaluate

__all__ = ["Pretrained", "load", "load_exported", "toy", "spoken", "load_weights", "HELD_OUT_SEED", "ASSET_FILES"]

# Training used seed 0 and validation seed 1: seed 2 is data no step ever saw. (Spoken: validation was
# test-split items of seed 1, training never touches the test split.)
HELD_OUT_SEED = 2


@dataclass
class Pretrained:
    """A trained model with everything needed to use it.

    model: :class:`~emformer_edu.transducer.RNNT` in eval mode. feature_extractor: with the
    training statistics and ``right_padding = R``. vocab: token names (blank = last id).
    config: the parsed ``*_config.json``; ``config["corpus"]`` (:attr:`corpus`) says what the model
    was trained on, ``"synthetic"`` or ``"spoken"``.
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
    def corpus(self) -> str:
        """``"synthetic"`` or ``"spoken"``: the corpus the model was trained on."""
        return self.config.get("corpus", "synthetic")

    @cached_property
    def corpus_config(self) -> Union[SyntheticConfig, SpokenConfig]:
        """The settings of that corpus (pass them to make comparable data)."""
        return corpora.corpus_config_from_dict(self.corpus, self.config[self.corpus])

    @property
    def synthetic_config(self) -> Optional[SyntheticConfig]:
        """The synthetic corpus settings the model was trained on (``None`` for a spoken model)."""
        return self.corpus_config if self.corpus == "synthetic" else None

    @property
    def spoken_config(self) -> Optional[SpokenConfig]:
        """The spoken corpus settings the model was trained on (``None`` for a synthetic model)."""
        return self.corpus_config if self.corpus == "spoken" else None

    @property
    def lexicon(self) -> Optional[Tuple[str, ...]]:
        """The words the spoken corpus makes its sentences from (``None`` for a synthetic model)."""
        return None if self.spoken_config is None else self.spoken_config.lexicon

    @property
    def test_voices(self) -> Optional[Tuple[str, ...]]:
        """The eSpeak NG voices held out from training, which :meth:`held_out` speaks with (``None``: synthetic)."""
        return None if self.spoken_config is None else self.spoken_config.test_voices

    def held_out(self, num_utterances: int = 100, seed: int = HELD_OUT_SEED,
                 condition: str = "held out") -> Union[SyntheticSpeechDataset, SpokenDataset]:
        """Utterances training never saw: synthetic ones of the training language, or for a spoken
        model sentences of the test split (held-out voices and word pairs), heard under ``condition``
        (one of :data:`~emformer_edu.data.spoken.CONDITIONS`, see
        :func:`~emformer_edu.data.spoken.listening_condition`; spoken models only)."""
        if self.corpus == "spoken":
            return SpokenDataset(num_utterances, "test", seed, listening_condition(condition, self.spoken_config))
        if condition != "held out":
            raise ValueError(f"listening conditions are for spoken models; this one is {self.corpus!r}.")
        return SyntheticSpeechDataset(num_utterances, seed=seed, config=self.synthetic_config)

    def features(self, waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """Waveform ``(N,)`` at 16 kHz -> features ``(T + R, F)``, ready for ``transcribe``. Another
        ``sample_rate`` raises ``ValueError`` (resample first); so do empty, stereo or non-finite audio."""
        return self.feature_extractor(waveform, sample_rate)[0]

    def chunks(self, features: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``(T + R, F)`` -> ``[(chunk (1, segment_length + R, F), length (1,)), ...]`` for
        ``model.transcribe_streaming`` (see :func:`emformer_edu.transducer.streaming.streaming_chunks`)."""
        return streaming_chunks(features, self.segment_length, self.right_context_length)

    def beam_search(self) -> RNNTBeamSearch:
        """An :class:`~emformer_edu.rnnt.beam_search.RNNTBeamSearch` for this model (torchaudio's interface)."""
        return RNNTBeamSearch(self.model, self.blank)

    @torch.no_grad()
    def recognize(self, waveform: torch.Tensor, beam_width: Optional[int] = 4, streaming: bool = False,
                  sample_rate: int = SAMPLE_RATE) -> str:
        """Waveform ``(N,)`` at 16 kHz -> recognized text (token names joined: for a spoken model, words
        and spaces), by beam search of ``beam_width`` (``None``: greedy), in full context or chunk by chunk.
        Bad audio (empty, stereo, another ``sample_rate``) raises ``ValueError``, as :meth:`features` does."""
        feats = self.features(waveform, sample_rate)
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
                 seed: int = HELD_OUT_SEED, condition: str = "held out") -> TERResult:
        """TER on ``num_utterances`` :meth:`held_out` utterances (see :func:`emformer_edu.train.metrics.evaluate`);
        for a spoken model the result's ``cer`` and ``wer`` too."""
        data = self.held_out(num_utterances, seed, condition)
        vocab = self.vocab if corpora.has_words(self.corpus) else None
        return evaluate(self.model, [data[i] for i in range(len(data))], self.feature_extractor, self.blank,
                        beam_width=beam_width, streaming=streaming, vocab=vocab)


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
    corpus = cfg.get("corpus", "synthetic")
    if corpus not in corpora.CORPORA or corpus not in cfg:
        raise ValueError(f"model config {config!r}: corpus {corpus!r} needs its settings under {corpus!r} "
                         f"(corpora: {corpora.CORPORA}); was it written by export_assets?")
    try:
        corpora.corpus_config_from_dict(corpus, cfg[corpus])
    except (TypeError, ValueError) as err:
        raise ValueError(f"model config {config!r}: {corpus} corpus settings: {err}") from err
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


def load_exported(directory: str, name: str) -> Pretrained:
    """:func:`load` the three files ``{name}_*`` that ``export_assets(..., directory, name)`` wrote."""
    paths = {k: os.path.join(directory, v.format(name=name)) for k, v in ASSET_FILES.items()}
    return load(paths["weights"], paths["stats"], paths["config"])


def _shipped(name: str) -> Pretrained:
    assets = resources.files("emformer_edu.train") / "assets"
    with resources.as_file(assets) as directory:
        return load_exported(directory, name)


def toy() -> Pretrained:
    """The toy model shipped in ``emformer_edu/train/assets/``: a 3-layer streaming Emformer RNN-T
    (memory, left and right context) trained on the default :class:`SyntheticConfig`."""
    return _shipped("toy")


def spoken() -> Pretrained:
    """The spoken-English model shipped in ``emformer_edu/train/assets/`` (``spoken_*``): a streaming
    Emformer RNN-T over characters, trained from scratch on fresh :class:`SpokenDataset` sentences;
    :meth:`Pretrained.held_out` gives test sentences spoken by the held-out :attr:`Pretrained.test_voices`."""
    return _shipped("spoken")
