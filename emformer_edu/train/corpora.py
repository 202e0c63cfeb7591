"""What the trainer trains on: each corpus's settings, vocabulary, datasets, and where a step's batch comes from.

``TrainConfig.corpus`` names one of four corpora, two generated and two read from disk:

* ``"synthetic"`` (:mod:`emformer_edu.data.synthetic`): tone sequences over ``a``, ``b``, ... A
  fixed set of ``num_train`` utterances is featurized once (:class:`FixedBatches`); step s takes
  the items :func:`~.batches.batch_indices` gives it (epoch-wise shuffles). Fast, so the unit
  tests and the shipped toy model use it.
* ``"spoken"`` (:mod:`emformer_edu.data.spoken`): eSpeak NG sentences over the characters
  ``a``-``z``, ``'`` and space. Utterances are fresh (:class:`FreshBatches`): step s takes items
  ``[s * B, (s + 1) * B)`` of ``SpokenDataset(split="train", seed=train_seed)``, so no sentence is
  heard twice and the model cannot memorize the set. A ``torch.utils.data.DataLoader`` with
  ``num_workers`` processes synthesizes and featurizes the next batches while the model trains
  on this one (synthesis costs about 10 ms per utterance). Validation: the test split, whose
  voices and word pairs training never hears.
* ``"librispeech"`` (:mod:`emformer_edu.data.librispeech`, settings :class:`LibriSpeechConfig`) and
  ``"manifest"`` (:mod:`emformer_edu.data.manifest`, settings :class:`ManifestConfig`): real
  recordings the learner has on disk (nothing is downloaded). :func:`transcripts` reads the lists
  of files and transcripts once; the tokens are characters or SentencePiece pieces trained on the
  training transcripts (the settings' ``tokenizer``, :func:`vocabulary`). A fixed set, as the
  synthetic one, but too big to keep in memory: :class:`ShuffledBatches` takes step s's items
  from :func:`~.batches.batch_indices` and has DataLoader workers decode and featurize them.
  Validation: ``num_valid`` recordings of the held-out subsets or manifest, drawn with ``valid_seed``.

Every item is a pure function of its index (and speed perturbation of ``(seed, index)``), so a
batch is the same with 0 or more workers, and a resumed run at step s takes the same items as an
uninterrupted one. Under ``torchrun`` each process takes its contiguous share of every step's items
(:func:`.distributed.shard`).

Notation: B batch, T frames, U target length, F mel bins, R right context, V vocabulary.
"""
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor
from ..data.librispeech import LibriSpeechConfig, read_librispeech
from ..data.manifest import ManifestConfig, read_manifest
from ..data.recordings import RecordedSpeech, Recording
from ..data.sentencepiece_vocab import SentencePieceVocabulary
from ..data.speech import CHARACTERS, character_vocabulary
from ..data.spoken import SpokenConfig, SpokenDataset
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from .batches import FeatureCollate, FeatureSet, SpeedPerturbed, batch_indices
from .config import CORPORA, ON_DISK, TrainConfig
from .distributed import SINGLE, DistEnv, shard

__all__ = ["CORPORA", "ON_DISK", "CorpusConfig", "corpus_config", "corpus_config_from_dict", "Transcripts",
           "transcripts", "train_tokenizer", "vocabulary", "num_symbols", "has_words", "held_out_recordings",
           "datasets", "stats_indices", "FixedBatches", "FreshBatches", "ShuffledBatches", "batch_source"]

CorpusConfig = Union[SyntheticConfig, SpokenConfig, LibriSpeechConfig, ManifestConfig]
_SETTINGS = {"synthetic": SyntheticConfig, "spoken": SpokenConfig, "librispeech": LibriSpeechConfig,
             "manifest": ManifestConfig}


def _check_corpus(corpus: str) -> None:
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}.")


def corpus_config(corpus: str, settings: Optional[CorpusConfig] = None) -> CorpusConfig:
    """``settings``, checked to be of ``corpus``'s kind, or that corpus's defaults if ``None``."""
    _check_corpus(corpus)
    cls = _SETTINGS[corpus]
    if settings is None:
        return cls()
    if not isinstance(settings, cls):
        raise ValueError(f"the {corpus!r} corpus takes a {cls.__name__}, got a {type(settings).__name__}.")
    return settings


def corpus_config_from_dict(corpus: str, values: Dict) -> CorpusConfig:
    """The settings from ``dataclasses.asdict`` output that went through JSON (lists back to tuples)."""
    _check_corpus(corpus)
    return _SETTINGS[corpus](**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class Transcripts(NamedTuple):
    """An on-disk corpus's recordings (paths and transcripts; no audio is read yet)."""

    train: List[Recording]
    valid: List[Recording]


def transcripts(config: TrainConfig, settings: CorpusConfig) -> Optional[Transcripts]:
    """The training and held-out recordings of an on-disk corpus, read once (the tokenizer trains on the
    training transcripts, the datasets read the audio); ``None`` for a generated corpus. Errors name the
    missing folder or file, or the malformed line."""
    if config.corpus not in ON_DISK:
        return None
    return Transcripts(_read(config.corpus, settings, "train"), _read(config.corpus, settings, "valid"))


def _read(corpus: str, settings: CorpusConfig, split: str) -> List[Recording]:
    """The recordings of an on-disk corpus's ``split``: ``"train"`` or ``"valid"``."""
    if corpus == "librispeech":
        return read_librispeech(settings.root, settings.train if split == "train" else settings.valid)
    return read_manifest(settings.train_manifest if split == "train" else settings.valid_manifest)


def _recorded(corpus: str, recordings: Sequence[Recording], vocab: Vocabulary) -> RecordedSpeech:
    """``recordings`` as a dataset tokenized by ``vocab``. LibriSpeech is 16 kHz: another rate means another
    corpus's files, so it is refused; a manifest's recordings are resampled."""
    name = "LibriSpeech" if corpus == "librispeech" else "the manifest"
    return RecordedSpeech(recordings, vocab, corpus != "librispeech", name)


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> SentencePieceVocabulary:
    """A SentencePiece BPE model of ``vocab_size`` pieces trained on ``texts``; too many pieces for the
    texts raises a ``ValueError`` that says how many they allow. Every letter and the apostrophe is a piece
    even if the texts lack it, so a held-out transcript never turns into ``<unk>``."""
    try:
        return SentencePieceVocabulary.train(texts, vocab_size, required_chars=CHARACTERS.replace(" ", ""))
    except ValueError as err:
        most = re.search(r"value <= (\d+)", str(err))  # SentencePiece says how many pieces the texts allow
        why = f"they allow at most {most.group(1)}" if most else str(err)
        raise ValueError(f"SentencePiece cannot make {vocab_size} pieces from the {len(texts)} training transcripts "
                         f"(--sentencepiece-vocab-size {vocab_size}): {why}. Choose a smaller size.") from None


def _sentencepiece(settings: CorpusConfig) -> bool:
    return getattr(settings, "tokenizer", "characters") == "sentencepiece"  # only recorded corpora have one


def vocabulary(corpus: str, settings: CorpusConfig, recordings: Optional[Transcripts] = None) -> Vocabulary:
    """Token names (blank last): ``a``, ``b``, ... for the synthetic corpus, the 28 characters for the others,
    or, with ``settings.tokenizer == "sentencepiece"``, pieces trained on the training transcripts
    (``recordings``, from :func:`transcripts`)."""
    _check_corpus(corpus)
    if corpus == "synthetic":
        return Vocabulary.letters(settings.num_tokens)
    if not _sentencepiece(settings):
        return character_vocabulary()
    if recordings is None:
        raise ValueError("a SentencePiece vocabulary is trained on the training transcripts: pass recordings.")
    return train_tokenizer([r.text for r in recordings.train], settings.sentencepiece_vocab_size)


def num_symbols(corpus: str, settings: CorpusConfig) -> int:
    """V (tokens + blank) of the model for ``corpus`` with ``settings``, without reading any data."""
    if _sentencepiece(settings):
        return settings.sentencepiece_vocab_size + 1  # SentencePiece makes exactly that many pieces, or fails
    return vocabulary(corpus, settings).num_symbols


def has_words(corpus: str) -> bool:
    """Whether the corpus's texts are words (so character and word error rates mean something)."""
    _check_corpus(corpus)
    return corpus != "synthetic"


def _held_out_sample(valid: RecordedSpeech, num_valid: int, seed: int) -> RecordedSpeech:
    """``num_valid`` recordings drawn with ``seed`` (all if there are no more), in corpus order.
    Drawn, not the first ones: those would be a handful of speakers."""
    if num_valid >= len(valid):
        return valid
    drawn = torch.randperm(len(valid), generator=torch.Generator().manual_seed(seed))[:num_valid]
    return valid.subset(sorted(drawn.tolist()))


def held_out_recordings(corpus: str, settings: CorpusConfig, vocab: Vocabulary, num_utterances: int,
                        seed: int) -> RecordedSpeech:
    """``num_utterances`` of an on-disk corpus's held-out recordings (its ``valid_subsets`` or
    ``valid_manifest``), drawn with ``seed``: what :meth:`~.pretrained.Pretrained.held_out` gives a
    model trained on real speech, read from the same place as during training."""
    if corpus not in ON_DISK:
        raise ValueError(f"held_out_recordings reads an on-disk corpus {ON_DISK}, got {corpus!r}.")
    return _held_out_sample(_recorded(corpus, _read(corpus, settings, "valid"), vocab), num_utterances, seed)


def datasets(config: TrainConfig, settings: CorpusConfig, vocab: Optional[Vocabulary] = None,
             recordings: Optional[Transcripts] = None) -> Tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """``(train, valid)`` datasets. Spoken: ``steps * batch_size`` training items (at least
    ``stats_utterances``) of the train split, ``num_valid`` items of the test split. On-disk corpora:
    every training recording, ``num_valid`` held-out ones (drawn with ``valid_seed``), tokenized by
    ``vocab`` (``recordings``: :func:`transcripts`, read here if not given). Training items are
    speed-perturbed if ``config.speed_perturb``."""
    c = config
    if c.corpus == "synthetic":
        train = SyntheticSpeechDataset(c.num_train, seed=c.train_seed, config=settings)
        valid = SyntheticSpeechDataset(c.num_valid, seed=c.valid_seed, config=settings)
    elif c.corpus == "spoken":
        train = SpokenDataset(max(c.steps * c.batch_size, c.stats_utterances), "train", c.train_seed, settings)
        valid = SpokenDataset(c.num_valid, "test", c.valid_seed, settings)
    else:
        recordings = transcripts(c, settings) if recordings is None else recordings
        vocab = vocabulary(c.corpus, settings, recordings) if vocab is None else vocab
        train = _recorded(c.corpus, recordings.train, vocab)
        valid = _held_out_sample(_recorded(c.corpus, recordings.valid, vocab), c.num_valid, c.valid_seed)
    if c.speed_perturb:
        train = SpeedPerturbed(train, seed=c.seed)
    return train, valid


def stats_indices(config: TrainConfig, num_items: int) -> List[int]:
    """The training items the feature statistics are computed on: the first ``stats_utterances``; for an
    on-disk corpus (sorted by speaker) as many spread evenly over the set, so every part of it counts."""
    n = min(config.stats_utterances, num_items)
    return [i * num_items // n for i in range(n)] if config.corpus in ON_DISK else list(range(n))


class FixedBatches:
    """The synthetic recipe: ``train_set`` featurized once (:class:`FeatureSet`), reshuffled every epoch."""

    def __init__(self, dataset, extractor: FeatureExtractor, config: TrainConfig, env: DistEnv = SINGLE):
        self.train_set = FeatureSet(dataset, extractor)
        self.batch_size, self.seed, self.env = config.batch_size, config.seed, env

    def batch(self, step: int):
        """``(features (B, T_max + R, F), lengths (B,), targets (B, U_max), target_lengths (B,))`` of ``step``
        (on one of N processes: its B / N utterances of the step's B, :func:`.distributed.shard`)."""
        indices = batch_indices(step, len(self.train_set), self.batch_size, self.seed)
        return self.train_set.batch(shard(indices, self.env))

    def close(self) -> None:
        pass


class _Steps(torch.utils.data.Sampler):
    """Batch sampler: the items of steps ``s = start, start + 1, ..., stop - 1``, as ``items(s)`` lists them
    (on one of N processes: its contiguous B / N of them, :func:`.distributed.shard`)."""

    def __init__(self, start: int, stop: int, items, env: DistEnv = SINGLE):
        self.start, self.stop, self.items, self.env = start, stop, items, env

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for s in range(self.start, self.stop):
            yield list(shard(self.items(s), self.env))


def _one_thread(worker_id: int) -> None:
    torch.set_num_threads(1)  # the worker has one core at most; its tensors are small


class _LoadedBatches:
    """Step s's batch made by a DataLoader from the items :meth:`items` lists for s (subclasses say which).

    With ``num_workers > 0`` the loader's processes make the utterances (synthesize or decode) and
    featurize them (:class:`FeatureCollate`) up to two batches per worker ahead of the training step;
    with 0 they are made in this process on demand. :meth:`batch` asks for a step: the next one
    continues the running loader, any other (the first call, a resumed run) starts a new loader at
    that step. :meth:`close` stops the workers.
    """

    def __init__(self, dataset, extractor: FeatureExtractor, config: TrainConfig, stop: int, env: DistEnv = SINGLE):
        self.train_set, self.collate, self.env = dataset, FeatureCollate(extractor), env
        self.batch_size, self.num_workers, self.stop = config.batch_size, config.num_workers, stop
        self._iter, self._next = None, None

    def items(self, step: int) -> Sequence[int]:
        raise NotImplementedError

    def _start(self, step: int) -> None:
        self.close()
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=_Steps(step, self.stop, self.items, self.env), collate_fn=self.collate,
            num_workers=self.num_workers, worker_init_fn=_one_thread if self.num_workers else None,
            prefetch_factor=2 if self.num_workers else None,
            generator=torch.Generator().manual_seed(0),  # else it draws a seed from the global RNG (dropout's)
        )
        self._iter, self._next = iter(loader), step

    def batch(self, step: int):
        """``(features (B, T_max + R, F), lengths (B,), targets (B, U_max), target_lengths (B,))`` of ``step``."""
        if not 0 <= step < self.stop:
            raise IndexError(f"step {step} is outside the {self.stop} steps the training set has items for.")
        if self._iter is None or step != self._next:
            self._start(step)
        self._next += 1
        return next(self._iter)

    def close(self) -> None:
        """Stop the worker processes (a later :meth:`batch` starts new ones where it is asked to)."""
        if self._iter is not None and hasattr(self._iter, "_shutdown_workers"):
            self._iter._shutdown_workers()
        self._iter, self._next = None, None


class FreshBatches(_LoadedBatches):
    """The spoken recipe: step s gets items ``[s * B, (s + 1) * B)`` of ``dataset``, each used once."""

    def __init__(self, dataset, extractor: FeatureExtractor, config: TrainConfig, env: DistEnv = SINGLE):
        # as many steps as the dataset has items for (config.steps)
        super().__init__(dataset, extractor, config, len(dataset) // config.batch_size, env)

    def items(self, step: int) -> Sequence[int]:
        B = self.batch_size
        return range(step * B, (step + 1) * B)


class ShuffledBatches(_LoadedBatches):
    """The on-disk recipe: a fixed set, reshuffled every epoch as :class:`FixedBatches` does
    (:func:`~.batches.batch_indices`), but read and featurized per batch by the DataLoader's workers,
    since a real corpus does not fit in memory as features."""

    def __init__(self, dataset, extractor: FeatureExtractor, config: TrainConfig, env: DistEnv = SINGLE):
        if len(dataset) < config.batch_size:
            raise ValueError(f"the training set holds {len(dataset)} recordings, fewer than batch_size "
                             f"({config.batch_size}): use a smaller --batch-size or more data.")
        super().__init__(dataset, extractor, config, config.steps, env)
        self.seed = config.seed

    def items(self, step: int) -> Sequence[int]:
        return batch_indices(step, len(self.train_set), self.batch_size, self.seed)


def batch_source(config: TrainConfig, dataset, extractor: FeatureExtractor,
                 env: DistEnv = SINGLE) -> Union[FixedBatches, FreshBatches, ShuffledBatches]:
    """:class:`FixedBatches` for the synthetic corpus, :class:`FreshBatches` for the spoken one,
    :class:`ShuffledBatches` for those on disk; on one of ``env.world_size`` processes, each step's batch
    is this rank's shard of the global batch."""
    kind = {"synthetic": FixedBatches, "spoken": FreshBatches}.get(config.corpus, ShuffledBatches)
    return kind(dataset, extractor, config, env)
