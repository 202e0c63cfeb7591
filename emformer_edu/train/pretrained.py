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

    libri = pretrained.from_torchaudio_bundle() # torchaudio's 76.7 M-parameter LibriSpeech model, if its
    libri.recognize(emformer_edu.speak("hello world").waveform)  # files are on disk (never downloaded)
    pretrained.export_torchaudio_bundle(spoken, "out")           # ours, as torchaudio's RNNTBundle

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

A config JSON may name a SentencePiece model instead of listing token names:
``"tokenizer": {"kind": "sentencepiece", "model": "{name}_spm.model"}`` (relative to the JSON's folder).

torchaudio's own format (``EMFORMER_RNNT_BASE_LIBRISPEECH``'s three files) is read and written by
:mod:`emformer_edu.train.bundle`: :func:`from_torchaudio_bundle`, :func:`export_torchaudio_bundle`.

``tests/test_pretrained.py`` decodes held-out utterances with these files on every run, so the
checkpoint and the code cannot drift apart unnoticed.

Notation: N samples, T frames, R right context, F mel bins, U target length.
"""
import dataclasses
import os
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import SAMPLE_RATE, FeatureExtractor, GlobalStats
from ..data.sentencepiece_vocab import SentencePieceVocabulary
from ..data.spoken import SpokenConfig, SpokenDataset, listening_condition
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from ..rnnt.beam_search import RNNTBeamSearch
from ..rnnt.greedy import greedy_decode
from ..rnnt.recognize import decode_streaming
from ..transducer.model import RNNT, build_model
from ..transducer.streaming import streaming_chunks
from . import bundle, corpora
from .checkpoints import ASSET_FILES, load_weights, read_json, read_state_dict, read_stats
from .metrics import TERResult, evaluate

__all__ = ["Pretrained", "load", "load_exported", "toy", "spoken", "from_torchaudio_bundle", "export_torchaudio_bundle",
           "load_weights", "HELD_OUT_SEED", "ASSET_FILES", "BUNDLE_FILES"]

BUNDLE_FILES = bundle.BUNDLE_FILES
# The corpus of torchaudio's model: real speech, so Pretrained.held_out cannot make more of it.
LIBRISPEECH = "librispeech"

# Training used seed 0 and validation seed 1: seed 2 is data no step ever saw. (Spoken: validation was
# test-split items of seed 1, training never touches the test split.)
HELD_OUT_SEED = 2


@dataclass
class Pretrained:
    """A trained model with everything needed to use it.

    model: :class:`~emformer_edu.transducer.RNNT` in eval mode. feature_extractor: with the
    training statistics and ``right_padding = R``. vocab: token names (blank = last id).
    config: the parsed ``*_config.json``; ``config["corpus"]`` (:attr:`corpus`) says what the model
    was trained on: ``"synthetic"`` or ``"spoken"`` (which :meth:`held_out` synthesizes), or real speech
    such as ``"librispeech"`` (torchaudio's model, :func:`from_torchaudio_bundle`).
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
        """The corpus the model was trained on: ``"synthetic"``, ``"spoken"``, ``"librispeech"``, ..."""
        return self.config.get("corpus", "synthetic")

    @cached_property
    def corpus_config(self):
        """The settings of that corpus (pass them to make comparable data)."""
        if self.corpus not in self.config:
            raise ValueError(f"this model's config holds no settings of its corpus {self.corpus!r} "
                             f"(a model trained on real speech, e.g. loaded by from_torchaudio_bundle, has none).")
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
        :func:`~emformer_edu.data.spoken.listening_condition`; spoken models only).

        A model trained here on recordings (``"librispeech"``, ``"manifest"``) reads ``num_utterances``
        of the held-out recordings it was validated on, drawn with ``seed`` (the files must still be where
        its config says). torchaudio's model (:func:`from_torchaudio_bundle`) raises ``ValueError``: its
        corpus cannot be synthesized, and eSpeak sentences would be another corpus, not held-out data of its own.
        """
        if self.corpus in corpora.ON_DISK and self.corpus in self.config:
            if condition != "held out":
                raise ValueError(f"condition applies to spoken models only, got {condition!r}.")
            return corpora.held_out_recordings(self.corpus, self.corpus_config, self.vocab, num_utterances, seed)
        if self.corpus not in ("synthetic", "spoken"):
            raise ValueError(
                f"held_out() synthesizes a model's own corpus; this model was trained on {self.corpus!r}, real "
                f"speech that cannot be synthesized. Recognize audio instead, e.g. "
                f"recognize(emformer_edu.speak('hello world').waveform), or a test set read from disk "
                f"(torchaudio.datasets.LIBRISPEECH(root, url='test-clean')).")
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
    tokenizer = cfg.get("tokenizer")
    for key in ("model",) if tokenizer is not None else ("model", "vocabulary"):
        if key not in cfg:
            raise ValueError(f"model config {config!r} has no {key!r} entry; was it written by export_assets?")
    try:
        model_config = EmformerRNNTConfig.from_dict(cfg["model"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"model config {config!r}: {err}") from err
    vocab = _vocabulary(cfg, config)
    corpus = cfg.get("corpus", "synthetic")
    known = corpus in corpora.CORPORA  # read now: corpora may be added after this module was imported
    # A subword model (tokenizer entry) may come from a corpus this version does not know: load it anyway.
    if (not known or corpus not in cfg) and tokenizer is None:
        raise ValueError(f"model config {config!r}: corpus {corpus!r} needs its settings under {corpus!r} "
                         f"(corpora: {corpora.CORPORA}); was it written by export_assets?")
    if known and corpus in cfg:
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


def _vocabulary(cfg: Dict, config: str) -> Vocabulary:
    """The token names of ``cfg["vocabulary"]``, or the SentencePiece model its ``"tokenizer"`` names."""
    tokenizer = cfg.get("tokenizer")
    if tokenizer is None:
        return Vocabulary(tuple(cfg["vocabulary"]))
    if not (isinstance(tokenizer, dict) and tokenizer.get("kind") == "sentencepiece"
            and isinstance(tokenizer.get("model"), str) and tokenizer["model"]):
        raise ValueError(f"model config {config!r}: \"tokenizer\" must be {{\"kind\": \"sentencepiece\", \"model\": "
                         f"\"<file>.model\"}} (the file relative to the config's folder), got {tokenizer!r}.")
    path = os.path.join(os.path.dirname(os.path.abspath(config)), tokenizer["model"])  # absolute stays absolute
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SentencePiece model {path!r}, named by model config {config!r}, not found "
                                f"(it is written beside the config; copy it with the other files).")
    try:
        vocab = SentencePieceVocabulary.from_file(path)
    except ValueError as err:
        raise ValueError(f"model config {config!r}: {err}") from None
    if "vocabulary" in cfg and tuple(cfg["vocabulary"]) != vocab.tokens:
        raise ValueError(f"model config {config!r}: its \"vocabulary\" differs from the pieces of {path!r}; "
                         f"were the files of two exports mixed?")
    return vocab


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


def from_torchaudio_bundle(path_or_dir: Optional[str] = None) -> Pretrained:
    """torchaudio's LibriSpeech Emformer RNN-T (``EMFORMER_RNNT_BASE_LIBRISPEECH``, 76.7 M parameters,
    4096 BPE pieces + blank) from its files on disk, as a :class:`Pretrained`. Never downloads.

    Args:
        path_or_dir: a folder in torchaudio's cache layout (``models/...pt``, ``pipeline-assets/...``),
            a flat folder with the three files, or ``None``: torchaudio's own cache,
            ``torch.hub.get_dir()/torchaudio`` (see :mod:`emformer_edu.train.bundle`).
    Raises:
        FileNotFoundError: the folder or a file is missing (the message says where torchaudio keeps it).
        ValueError: weights of another model, malformed statistics, a SentencePiece model of another size.
    """
    model, stats, vocab, paths = bundle.read_bundle(path_or_dir)
    config = {
        "model": dataclasses.asdict(model.config),
        "vocabulary": list(vocab.tokens),
        "blank": vocab.blank,
        "corpus": LIBRISPEECH,
        "tokenizer": {"kind": "sentencepiece", "model": paths["sp_model"]},
        "source": {"bundle": bundle.BUNDLE_NAME, "files": paths},
    }
    extractor = FeatureExtractor(stats, right_padding=model.config.right_context_length)  # R = 4
    return Pretrained(model, extractor, vocab, config)


def export_torchaudio_bundle(source: Union[Pretrained, RNNT], directory: str,
                             stats: Optional[Union[GlobalStats, FeatureExtractor]] = None,
                             vocab: Optional[Vocabulary] = None):
    """Write a model as torchaudio's bundle files (:func:`emformer_edu.train.bundle.write_bundle`) under
    ``directory`` and return torchaudio's ``RNNTBundle`` that reads them::

        ta = pretrained.export_torchaudio_bundle(pretrained.spoken(), "spoken_bundle")
        features, length = ta.get_feature_extractor()(waveform)
        hypos = ta.get_decoder()(features, length, 4)           # torchaudio's RNNTBeamSearch
        ta.get_token_processor()(hypos[0][0])                   # the text our recognize() gives

    Args:
        source: a :class:`Pretrained` (its statistics and vocabulary are used unless given) or an RNNT.
        stats, vocab: needed with a bare model. A character vocabulary gets a SentencePiece model with
            the same ids (see :func:`emformer_edu.train.bundle.sentencepiece_model`).
    For the base configuration with 4096 pieces the folder is a drop-in copy of torchaudio's cache:
    with ``torch.hub.set_dir(parent)`` for ``directory = parent/torchaudio``,
    ``EMFORMER_RNNT_BASE_LIBRISPEECH`` itself loads these files.
    """
    if isinstance(source, Pretrained):
        model = source.model
        stats = source.feature_extractor.global_stats if stats is None else stats
        vocab = source.vocab if vocab is None else vocab
    else:
        model = source
        if stats is None or vocab is None:
            raise ValueError("export_torchaudio_bundle(model, ...) needs stats and vocab; or pass a Pretrained.")
    bundle.write_bundle(model, stats, vocab, directory)
    return bundle.rnnt_bundle(directory, model.config)
