"""Training and evaluation: the trainer, checkpoints, the command line, metrics, and the shipped models.

* ``config``: :class:`TrainConfig`, whose fields are also the command-line options;
* ``batches``: :class:`FeatureSet`, :class:`FeatureCollate`, :func:`batch_indices`, :func:`prepend_blank`, :func:`length_buckets`,
  :func:`spec_augment`, :func:`change_speed`, :class:`SpeedPerturbed`;
* ``corpora``: each corpus's vocabulary and datasets; fixed (synthetic) or fresh (spoken) batches;
* ``trainer``: :class:`Trainer`, :class:`TrainEvent`, :func:`warmup_cosine`;
* ``checkpoints``: :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`export_assets` and the guarded file readers;
* ``cli``: :func:`main` (``python -m emformer_edu.train --help`` lists the options);
* ``metrics``, ``latency``: token, character and word error rates, emission and word-end delays; ``pretrained``:
  the shipped models (``toy()``, ``spoken()``) and torchaudio's LibriSpeech model (``from_torchaudio_bundle()``);
  ``bundle``: torchaudio's pretrained-bundle files, read and written; ``report``: the spoken model's accuracy
  table (``python -m emformer_edu.train.report``); ``averaging``: :class:`WeightAverage`, the ``ema_decay`` option.
"""
from . import bundle, corpora, pretrained  # not report or variants: run as python -m, runpy warns if already imported
from .batches import (
    FeatureCollate, FeatureSet, SpeedPerturbed, batch_indices, change_speed, length_buckets, prepend_blank,
    spec_augment,
)
from .checkpoints import export_assets, load_checkpoint, save_checkpoint
from .cli import main
from .config import TrainConfig
from .latency import (
    EmissionDelays, WordEndDelays, compare_alignments, emission_delays, forced_alignment_frames, word_end_delays,
)
from .metrics import (
    TERResult, character_error_rate, edit_distance, evaluate, matched_pairs, token_error_rate, word_error_rate,
)
from .pretrained import Pretrained, export_torchaudio_bundle, from_torchaudio_bundle
from .trainer import TrainEvent, Trainer, warmup_cosine
