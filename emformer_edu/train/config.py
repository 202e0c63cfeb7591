"""Training settings: one dataclass whose fields are also the command-line options.

Every field carries its help text in ``metadata["help"]``. :mod:`emformer_edu.train.cli` turns
each field into a ``--kebab-case`` option with the field's type, default and help, so adding a
field here adds the option; there is no second list to keep in step.

Notation: B batch (``batch_size`` utterances), T frames, F mel bins.
"""
from dataclasses import dataclass, field

from ..checks import check_positive

CORPORA = ("synthetic", "spoken", "librispeech", "manifest")  # what TrainConfig.corpus can name (built in .corpora)
ON_DISK = ("librispeech", "manifest")  # corpora read from the learner's disk (the others are generated)


def _field(default, help: str):
    """A dataclass field with the help text the command line shows for it."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Training settings (all plain values, so they go into checkpoints and JSON).

    Data (``corpus``, see :mod:`emformer_edu.train.corpora`):

    * ``"synthetic"``: ``num_train`` utterances of ``SyntheticSpeechDataset(seed=train_seed)`` are
      featurized once and kept in memory; the held-out set is ``num_valid`` utterances with
      ``valid_seed`` (other seeds give other utterances);
    * ``"spoken"``: fresh eSpeak NG sentences, never repeated: step s trains on items
      ``[s * B, (s + 1) * B)`` of ``SpokenDataset(split="train", seed=train_seed)``, synthesized and
      featurized by ``num_workers`` DataLoader processes while the model trains (``num_train`` is
      unused); the held-out set is ``num_valid`` items of the test split (unseen voices and
      sentences) with ``valid_seed``;
    * ``"librispeech"`` and ``"manifest"``: recordings on disk (where: the corpus settings,
      :class:`~emformer_edu.data.librispeech.LibriSpeechConfig`,
      :class:`~emformer_edu.data.manifest.ManifestConfig`), read by ``num_workers`` DataLoader
      processes and reshuffled every epoch; the held-out set is ``num_valid`` recordings of the
      held-out subsets or manifest, drawn with ``valid_seed``. Their settings also say what the
      model emits (``tokenizer``): the 28 characters or SentencePiece pieces trained on the
      training transcripts.

    Feature statistics come from ``stats_utterances`` training utterances (the first ones; on-disk
    corpora: spread evenly over the training set, which is sorted by speaker).
    ``speed_perturb`` resamples every training utterance by a factor drawn from [0.9, 1.1]
    (once per utterance: for the synthetic corpus the fixed set is perturbed once).

    Optimization: Adam(``lr``, betas (0.9, 0.98)), linear warm-up over ``warmup_steps``,
    cosine decay to ``lr * final_lr_scale`` at ``steps``, gradient norm clipped to
    ``grad_clip`` (0 disables). ``length_buckets`` > 1 sorts each batch by length and runs it
    as that many parts, each padded only to its own longest utterance: less compute on padding,
    the same gradient up to the last partial encoder frame of each part's longest utterance
    (see :func:`~emformer_edu.train.batches.length_buckets`).

    Objective: the RNN-T loss, plus ``ctc_weight`` times CTC's loss on the encoder output read
    through the joiner without the predictor (:mod:`emformer_edu.rnnt.ctc`; no parameter added, so
    the model stays torchaudio's). Reported training and held-out losses are the RNN-T loss alone.

    Weight average: with ``ema_decay`` > 0 an exponential moving average of the weights is kept beside
    them (:mod:`emformer_edu.train.averaging`); held-out evaluations and the export use the average, the
    optimizer steps the weights themselves.

    SpecAugment (``spec_augment=True``): per utterance ``freq_masks`` bands of up to
    ``freq_mask_width`` mel bins and ``time_masks`` spans of up to ``time_mask_width``
    frames are set to 0 (the mean, in normalized units).
    """

    steps: int = _field(600, "optimizer steps; the learning-rate schedule ends there")
    batch_size: int = _field(32, "utterances per step (B); under torchrun the global batch, split among the processes")
    lr: float = _field(2e-3, "peak Adam learning rate")
    warmup_steps: int = _field(100, "linear warm-up steps before the cosine decay")
    final_lr_scale: float = _field(0.02, "learning rate at the last step, as a fraction of lr")
    grad_clip: float = _field(5.0, "largest gradient norm, 0: no clipping")
    spec_augment: bool = _field(False, "mask random mel bands and frame spans of every training utterance")
    freq_masks: int = _field(2, "SpecAugment: mel bands masked per utterance")
    freq_mask_width: int = _field(12, "SpecAugment: widest masked band, in mel bins")
    time_masks: int = _field(2, "SpecAugment: frame spans masked per utterance")
    time_mask_width: int = _field(4, "SpecAugment: longest masked span, in frames (a token can be 6 frames)")
    num_train: int = _field(3000, "synthetic corpus: training utterances, featurized once and kept in memory")
    num_valid: int = _field(200, "held-out utterances for the greedy token (spoken, librispeech, manifest: also "
                                 "character and word) error rate")
    train_seed: int = _field(0, "seed of the training utterances")
    valid_seed: int = _field(1, "seed of the held-out utterances (must differ from train_seed)")
    stats_utterances: int = _field(500, "training utterances the feature statistics are computed on")
    eval_every: int = _field(200, "steps between held-out evaluations, 0: at the end only")
    seed: int = _field(0, "initial weights, data order, dropout, SpecAugment and speed perturbation")
    corpus: str = _field("synthetic", "training data: 'synthetic' (tone sequences, num_train kept in memory), "
                                      "'spoken' (eSpeak NG sentences, fresh ones every step, tested on unseen voices), "
                                      "'librispeech' (from --root) or 'manifest' (from --train-manifest)")
    num_workers: int = _field(1, "spoken and on-disk corpora: DataLoader processes that make (synthesize or read) "
                                 "the next batches while the model trains (0: in the training process)")
    length_buckets: int = _field(1, "run each batch as this many parts of similar length (less padding, the same gradient but for the partial last frames)")
    speed_perturb: bool = _field(False, "resample each training utterance by a random speed factor in [0.9, 1.1] "
                                        "(tempo and pitch change together)")
    fastemit_lambda: float = _field(0.0, "FastEmit regularisation (Yu et al. 2021): the gradient through emission "
                                         "edges is scaled by 1 + lambda, so tokens are emitted earlier (0: off)")

    ctc_weight: float = _field(0.0, "weight of an auxiliary CTC loss on the encoder alone, read through the joiner's "
                                    "output layer (training only, no parameter added): the encoder must spell by "
                                    "itself, which keeps greedy search from deleting a sentence's tail (0: off)")
    ema_decay: float = _field(0.0, "keep an exponential moving average of the weights with this decay (about "
                                   "1 / (1 - decay) steps back; 0: off); evaluations and --export use the average")

    def __post_init__(self):
        for name in ("steps", "batch_size", "num_train", "num_valid", "stats_utterances", "length_buckets"):
            check_positive(name, getattr(self, name))
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus must be one of {CORPORA}, got {self.corpus!r}.")
        for name in ("warmup_steps", "eval_every", "num_workers", "freq_masks", "freq_mask_width", "time_masks",
                     "time_mask_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if not (isinstance(self.fastemit_lambda, (int, float)) and 0 <= self.fastemit_lambda < float("inf")):
            raise ValueError(f"fastemit_lambda must be a finite number >= 0, got {self.fastemit_lambda!r}.")
        if not (isinstance(self.ctc_weight, (int, float)) and 0 <= self.ctc_weight < float("inf")):
            raise ValueError(f"ctc_weight must be a finite number >= 0, got {self.ctc_weight!r}.")
        if not (isinstance(self.ema_decay, (int, float)) and 0 <= self.ema_decay < 1):
            raise ValueError(f"ema_decay must be in [0, 1) (0: no average), got {self.ema_decay!r}.")
        if not 0 <= self.final_lr_scale <= 1:
            raise ValueError(f"final_lr_scale must be in [0, 1], got {self.final_lr_scale!r}.")
        if not self.grad_clip >= 0:
            raise ValueError(f"grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip!r}.")
        if self.train_seed == self.valid_seed:
            raise ValueError(f"train_seed and valid_seed must differ (same seed = same utterances), "
                             f"both are {self.train_seed}.")
