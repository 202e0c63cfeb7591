"""Training and evaluation: the trainer, checkpoints, the command line, metrics, and the shipped models.

``python -m emformer_edu.train --help`` lists the command-line options.
"""
from . import pretrained
from .latency import EmissionDelays, compare_alignments, emission_delays, forced_alignment_frames
from .metrics import TERResult, edit_distance, evaluate, token_error_rate
from .pretrained import Pretrained
from .trainer import TrainConfig, TrainEvent, Trainer, export_assets, load_checkpoint, main, save_checkpoint
