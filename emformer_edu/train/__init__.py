"""Training and evaluation: the trainer, checkpoints, the command line, metrics, and the shipped models.

* ``config``: :class:`TrainConfig`, whose fields are also the command-line options;
* ``batches``: :class:`FeatureSet`, :func:`batch_indices`, :func:`prepend_blank`, :func:`spec_augment`;
* ``trainer``: :class:`Trainer`, :class:`TrainEvent`, :func:`warmup_cosine`;
* ``checkpoints``: :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`export_assets` and the guarded file readers;
* ``cli``: :func:`main` (``python -m emformer_edu.train --help`` lists the options);
* ``metrics``, ``latency``: token error rate and emission delays; ``pretrained``: the shipped models.
"""
from . import pretrained
from .batches import FeatureSet, batch_indices, prepend_blank, spec_augment
from .checkpoints import export_assets, load_checkpoint, save_checkpoint
from .cli import main
from .config import TrainConfig
from .latency import EmissionDelays, compare_alignments, emission_delays, forced_alignment_frames
from .metrics import TERResult, edit_distance, evaluate, token_error_rate
from .pretrained import Pretrained
from .trainer import TrainEvent, Trainer, warmup_cosine
