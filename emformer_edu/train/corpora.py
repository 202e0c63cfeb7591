"""What the trainer trains on: each corpus's settings, vocabulary, datasets, and where a step's batch comes from.

``TrainConfig.corpus`` names one of two corpora:

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

Every item is a pure function of its index (and speed perturbation of ``(seed, index)``), so a
batch is the same with 0 or more workers, and a resumed run at step s takes the same items as an
uninterrupted one.

Notation: B batch, T frames, U target length, F mel bins, R right context.
"""
from typing import Dict, Optional, Tuple, Union

import torch

from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor
from ..data.speech import character_vocabulary
from ..data.spoken import SpokenConfig, SpokenDataset
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from .batches import FeatureCollate, FeatureSet, SpeedPerturbed, batch_indices
from .config import CORPORA, TrainConfig
from .distributed import SINGLE, DistEnv, shard

__all__ = ["CORPORA", "CorpusConfig", "corpus_config", "corpus_config_from_dict", "vocabulary", "has_words",
           "datasets", "FixedBatches", "FreshBatches", "batch_source"]

CorpusConfig = Union[SyntheticConfig, SpokenConfig]
_SETTINGS = {"synthetic": SyntheticConfig, "spoken": SpokenConfig}


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


def vocabulary(corpus: str, settings: CorpusConfig) -> Vocabulary:
    """Token names (blank last): ``a``, ``b``, ... for the synthetic corpus, the 28 characters for the spoken one."""
    _check_corpus(corpus)
    return Vocabulary.letters(settings.num_tokens) if corpus == "synthetic" else character_vocabulary()


def has_words(corpus: str) -> bool:
    """Whether the corpus's texts are words (so character and word error rates mean something)."""
    _check_corpus(corpus)
    return corpus == "spoken"


def datasets(config: TrainConfig, settings: CorpusConfig) -> Tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """``(train, valid)`` datasets. Spoken: ``steps * batch_size`` training items (at least
    ``stats_utterances``) of the train split, ``num_valid`` items of the test split. Training
    items are speed-perturbed if ``config.speed_perturb``."""
    c = config
    if c.corpus == "synthetic":
        train = SyntheticSpeechDataset(c.num_train, seed=c.train_seed, config=settings)
        valid = SyntheticSpeechDataset(c.num_valid, seed=c.valid_seed, config=settings)
    else:
        train = SpokenDataset(max(c.steps * c.batch_size, c.stats_utterances), "train", c.train_seed, settings)
        valid = SpokenDataset(c.num_valid, "test", c.valid_seed, settings)
    if c.speed_perturb:
        train = SpeedPerturbed(train, seed=c.seed)
    return train, valid


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
    """Batch sampler: the items ``[s * B, (s + 1) * B)`` of steps ``s = start, start + 1, ..., stop - 1``
    (on one of N processes: its contiguous B / N of them, :func:`.distributed.shard`)."""

    def __init__(self, start: int, stop: int, batch_size: int, env: DistEnv = SINGLE):
        self.start, self.stop, self.batch_size, self.env = start, stop, batch_size, env

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        B = self.batch_size
        for s in range(self.start, self.stop):
            yield list(shard(range(s * B, (s + 1) * B), self.env))


def _one_thread(worker_id: int) -> None:
    torch.set_num_threads(1)  # the worker has one core at most; its tensors are small


class FreshBatches:
    """The spoken recipe: step s gets items ``[s * B, (s + 1) * B)`` of ``dataset``, made by a DataLoader.

    With ``num_workers > 0`` the loader's processes synthesize and featurize (:class:`FeatureCollate`)
    up to two batches per worker ahead of the training step; with 0 they are made in this process
    on demand. :meth:`batch` asks for a step: the next one continues the running loader, any other
    (the first call, a resumed run) starts a new loader at that step. :meth:`close` stops the workers.
    """

    def __init__(self, dataset, extractor: FeatureExtractor, config: TrainConfig, env: DistEnv = SINGLE):
        self.train_set, self.collate, self.env = dataset, FeatureCollate(extractor), env
        self.batch_size, self.num_workers = config.batch_size, config.num_workers
        self.stop = len(dataset) // config.batch_size  # steps the dataset has items for (config.steps)
        self._iter, self._next = None, None

    def _start(self, step: int) -> None:
        self.close()
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=_Steps(step, self.stop, self.batch_size, self.env), collate_fn=self.collate,
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


def batch_source(config: TrainConfig, dataset, extractor: FeatureExtractor,
                 env: DistEnv = SINGLE) -> Union[FixedBatches, FreshBatches]:
    """:class:`FixedBatches` for the synthetic corpus, :class:`FreshBatches` for the spoken one; on one of
    ``env.world_size`` processes, each step's batch is this rank's shard of the global batch."""
    return (FixedBatches if config.corpus == "synthetic" else FreshBatches)(dataset, extractor, config, env)
