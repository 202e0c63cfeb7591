"""Train an Emformer RNN-T from scratch on the synthetic corpus, on a laptop CPU, in minutes.

The recipe follows torchaudio's LibriSpeech Emformer RNN-T training
(``examples/asr/emformer_rnnt``), scaled down:

* features: :class:`~emformer_edu.features.FeatureExtractor` with statistics computed on the
  training set, right-padded with R = ``right_context_length`` zero frames;
* the predictor input is the targets *prepended with blank* (blank = last id, the start
  symbol), the loss gets the targets without it and logits ``(B, T', U + 1, V)``::

      logits, logit_lengths, _, _ = model(features, lengths, [blank] + targets, target_lengths + 1)
      loss = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=blank)

* Adam with a linear warm-up, then cosine decay; gradient-norm clipping; optional
  SpecAugment-style frequency and time masks;
* every ``eval_every`` steps the token error rate (TER) of greedy decoding on a held-out set;
* a checkpoint with everything needed to resume exactly (model, optimizer, schedule, step,
  random state, feature statistics, configs).

Use it from Python (:class:`Trainer`) or the command line. The shipped toy model was made with::

    python -m emformer_edu.train --threads 1 --out runs/toy --export emformer_edu/assets

(600 steps of 32 utterances; about 3 minutes on one core of a shared 2-core CPU, held-out
greedy TER 0 %). ``python -m emformer_edu.train --help`` lists the options. On a busy
machine use ``--threads 1``: this model's tensors are small, and a second intra-op thread that
has to wait for a busy core made steps 5-10 times slower in our measurements.

Progress goes to a ``tqdm`` bar on stderr (``progress=False`` / ``--no-progress`` turns it off);
``callback`` receives a :class:`TrainEvent` after every step and evaluation, so a notebook
can drive a widget instead (see :class:`WidgetProgress`).

Notation: B batch, T input frames, T' encoder frames, U target length, V vocabulary
(tokens + blank), D model dim, F mel bins, R right context.
"""
import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
from tqdm import tqdm

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor, GlobalStats, compute_global_stats
from ..data.synthetic import SyntheticConfig, SyntheticSpeechDataset
from ..rnnt.loss import rnnt_loss
from ..runtime import single_thread
from ..transducer.model import build_model
from .metrics import evaluate
from .pretrained import ASSET_FILES, load_weights

__all__ = [
    "TrainConfig",
    "TrainEvent",
    "FeatureSet",
    "prepend_blank",
    "spec_augment",
    "warmup_cosine",
    "Trainer",
    "save_checkpoint",
    "load_checkpoint",
    "export_assets",
    "main",
]

CHECKPOINT_FORMAT = "emformer_edu.train/1"


# ----------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Training settings (all plain values, so they go into checkpoints and JSON).

    Data: ``num_train`` utterances of ``SyntheticSpeechDataset(seed=train_seed)`` are
    featurized once and kept in memory; the held-out set is ``num_valid`` utterances with
    ``valid_seed`` (other seeds give other utterances). Feature statistics come from the
    first ``stats_utterances`` training utterances.

    Optimization: Adam(``lr``, betas (0.9, 0.98)), linear warm-up over ``warmup_steps``,
    cosine decay to ``lr * final_lr_scale`` at ``steps``, gradient norm clipped to
    ``grad_clip`` (0 disables).

    SpecAugment (``spec_augment=True``): per utterance ``freq_masks`` bands of up to
    ``freq_mask_width`` mel bins and ``time_masks`` spans of up to ``time_mask_width``
    frames are set to 0 (the mean, in normalized units).
    """

    steps: int = 600
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 100
    final_lr_scale: float = 0.02
    grad_clip: float = 5.0
    spec_augment: bool = False
    freq_masks: int = 2
    freq_mask_width: int = 12
    time_masks: int = 2
    time_mask_width: int = 4
    num_train: int = 3000
    num_valid: int = 200
    train_seed: int = 0
    valid_seed: int = 1
    stats_utterances: int = 500
    eval_every: int = 200
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "num_train", "num_valid", "stats_utterances"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        for name in ("warmup_steps", "eval_every", "freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if not 0 <= self.final_lr_scale <= 1:
            raise ValueError(f"final_lr_scale must be in [0, 1], got {self.final_lr_scale!r}.")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip!r}.")
        if self.train_seed == self.valid_seed:
            raise ValueError(f"train_seed and valid_seed must differ (same seed = same utterances), both are {self.train_seed}.")


class TrainEvent(NamedTuple):
    """What a progress callback receives.

    kind: ``"step"`` (after an optimizer step), ``"eval"`` (after a held-out evaluation) or
    ``"end"``. loss: mean RNN-T loss (nats per utterance) of the step; ter: held-out
    greedy TER as a fraction (``"eval"`` and ``"end"`` only, else ``None``).
    """

    kind: str
    step: int
    total_steps: int
    loss: float
    lr: float
    ter: Optional[float]
    elapsed_s: float


# ----------------------------------------------------------------------------- data
class FeatureSet:
    """Synthetic utterances featurized once and kept in memory (token ids and ``(T, F)`` features).

    Featurizing costs about as much as a training step, so doing it once per utterance
    instead of once per epoch halves training time.
    """

    def __init__(self, dataset: SyntheticSpeechDataset, extractor: FeatureExtractor):
        self.right_padding = extractor.right_padding
        self.features: List[torch.Tensor] = []  # (T_i, F) each
        self.tokens: List[torch.Tensor] = []  # (U_i,) int32 each
        with torch.no_grad(), single_thread():
            for i in range(len(dataset)):
                utt = dataset[i]
                self.features.append(extractor.features(utt.waveform))
                self.tokens.append(utt.tokens.to(torch.int32))

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices: Sequence[int]):
        """``(features (B, T_max + R, F), lengths (B,), targets (B, U_max), target_lengths (B,))``.

        Same layout as :class:`~emformer_edu.synthetic.Collate`: zero padding, then R zero
        frames; lengths count real frames; int32 targets padded with 0 (use the lengths).
        """
        pad = torch.nn.utils.rnn.pad_sequence
        feats = [self.features[i] for i in indices]
        toks = [self.tokens[i] for i in indices]
        x = torch.nn.functional.pad(pad(feats, batch_first=True), (0, 0, 0, self.right_padding))
        lengths = torch.tensor([f.size(0) for f in feats], dtype=torch.int32)
        return x, lengths, pad(toks, batch_first=True), torch.tensor([t.numel() for t in toks], dtype=torch.int32)


def prepend_blank(targets: torch.Tensor, blank: int) -> torch.Tensor:
    """``(B, U)`` targets -> ``(B, U + 1)`` predictor input starting with the blank (start symbol)."""
    return torch.cat([torch.full_like(targets[:, :1], blank), targets], dim=1)


def spec_augment(
    features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator,
    freq_masks: int = 2, freq_mask_width: int = 12, time_masks: int = 2, time_mask_width: int = 4,
) -> torch.Tensor:
    """SpecAugment-style masking (Park et al., 2019) without time warping; returns a new tensor.

    ``features (B, T + R, F)``, ``lengths (B,)``. For each utterance, ``freq_masks`` bands of
    ``w ~ U{0..freq_mask_width}`` mel bins and ``time_masks`` spans of ``w ~ U{0..time_mask_width}``
    frames inside its ``lengths[b]`` real frames are set to 0, the mean in normalized units.
    Time masks stay short because a synthetic token can be as short as 6 frames: masking
    all of it would teach the model to hallucinate.
    """
    out = features.clone()
    F = out.size(-1)
    draw = lambda high: int(torch.randint(0, high + 1, (1,), generator=generator))  # noqa: E731
    for b in range(out.size(0)):
        T_b = int(lengths[b])
        for _ in range(freq_masks):
            w = draw(min(freq_mask_width, F))
            f0 = draw(F - w)
            out[b, :, f0 : f0 + w] = 0
        for _ in range(time_masks):
            w = draw(min(time_mask_width, T_b))
            t0 = draw(T_b - w)
            out[b, t0 : t0 + w] = 0
    return out


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_scale: float) -> float:
    """Learning-rate factor: linear 0 -> 1 over ``warmup_steps``, then cosine 1 -> ``final_scale``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_scale + (1 - final_scale) * 0.5 * (1 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str, blob: Dict) -> None:
    """``torch.save`` via a temporary file, so an interrupted save never leaves half a checkpoint."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> Dict:
    """Load a training checkpoint written by :meth:`Trainer.save`; clear errors for a wrong path or file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r} (no such file).")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle / zip errors: say which file and why
        raise ValueError(f"{path!r} is not a readable torch checkpoint: {err}") from err
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} is not an emformer_edu training checkpoint (expected format {CHECKPOINT_FORMAT!r}).")
    return blob


# ----------------------------------------------------------------------------- the trainer
class Trainer:
    """Owns the model, data, optimizer and schedule; :meth:`fit` trains, :meth:`save` / :meth:`resume` persist.

    Args:
        config: :class:`TrainConfig`.
        model_config: ``emformer_rnnt_model`` arguments; default :func:`toy_model_config`.
            ``num_symbols`` must equal the vocabulary's (tokens + blank).
        synthetic: :class:`SyntheticConfig` of the corpus (default settings if ``None``).
        callback: called with a :class:`TrainEvent` after every step and evaluation.
        progress: show a ``tqdm`` bar on stderr.
        global_stats: feature statistics to use instead of computing them (resume uses it).

    Example::

        trainer = Trainer(TrainConfig(steps=200), progress=False)
        history = trainer.fit()
        trainer.save("runs/toy/checkpoint.pt")
    """

    def __init__(
        self, config: Optional[TrainConfig] = None, model_config: Optional[Dict] = None,
        synthetic: Optional[SyntheticConfig] = None, callback: Optional[Callable[[TrainEvent], None]] = None,
        progress: bool = True, global_stats: Optional[GlobalStats] = None,
    ):
        self.config = config if config is not None else TrainConfig()
        self.synthetic = synthetic if synthetic is not None else SyntheticConfig()
        self.vocab = Vocabulary.letters(self.synthetic.num_tokens)
        if model_config is None:
            model_config = EmformerRNNTConfig.toy(self.vocab.num_symbols)
        elif isinstance(model_config, dict):
            model_config = EmformerRNNTConfig.from_dict(model_config)
        self.model_config = model_config
        if model_config.num_symbols != self.vocab.num_symbols:
            raise ValueError(
                f"model_config num_symbols ({model_config.num_symbols}) must be the vocabulary size "
                f"{self.vocab.num_symbols} ({self.vocab.num_tokens} tokens + blank)."
            )
        if model_config.input_dim != 80:
            raise ValueError(f"model_config input_dim must be 80 (mel bins), got {model_config.input_dim}.")
        self.callback = callback
        self.progress = progress
        self.blank = self.vocab.blank
        c = self.config

        torch.manual_seed(c.seed)  # initial weights and dropout
        self.model = build_model(self.model_config)
        train_set = SyntheticSpeechDataset(c.num_train, seed=c.train_seed, config=self.synthetic)
        self.valid_set = SyntheticSpeechDataset(c.num_valid, seed=c.valid_seed, config=self.synthetic)
        R = self.model_config.right_context_length
        if global_stats is None:
            n = min(c.stats_utterances, c.num_train)
            with single_thread():
                global_stats = compute_global_stats(train_set[i].waveform for i in range(n))
        self.extractor = FeatureExtractor(global_stats, right_padding=R)
        self.train_set = FeatureSet(train_set, self.extractor)

        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=(0.9, 0.98), eps=1e-9)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, c.warmup_steps, c.steps, c.final_lr_scale)
        )
        self.step = 0
        self.history: List[Dict] = []  # one entry per evaluation: step, loss, ter, elapsed_s
        self.elapsed_s = 0.0

    # -- one step ---------------------------------------------------------------------
    def _batch_indices(self, step: int) -> List[int]:
        """Indices for ``step``: epoch-wise shuffles seeded by (seed, epoch), so any step can be replayed."""
        c, n = self.config, len(self.train_set)
        per_epoch = max(1, n // c.batch_size)
        epoch, k = divmod(step, per_epoch)
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
        return order[k * c.batch_size : (k + 1) * c.batch_size].tolist()

    def loss(self, features, lengths, targets, target_lengths) -> torch.Tensor:
        """Mean RNN-T loss of a batch: features ``(B, T + R, F)``, lengths ``(B,)`` (real frames),
        targets ``(B, U)`` without blank, target_lengths ``(B,)`` -> scalar.

        As in torchaudio's recipe the predictor reads ``[blank] + targets`` (U + 1 steps), so the
        logits are ``(B, T', U + 1, V)``, and the loss scores the targets without the blank.
        """
        logits, logit_lengths, _, _ = self.model(features, lengths, prepend_blank(targets, self.blank), target_lengths + 1)
        return rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=self.blank, reduction="mean")

    def train_step(self) -> float:
        """One optimizer step on the batch for ``self.step``; returns its loss."""
        c = self.config
        features, lengths, targets, target_lengths = self.train_set.batch(self._batch_indices(self.step))
        if c.spec_augment:
            g = torch.Generator().manual_seed(c.seed * 1_000_003 + self.step + 7)
            features = spec_augment(features, lengths, g, c.freq_masks, c.freq_mask_width, c.time_masks, c.time_mask_width)
        self.model.train()
        loss = self.loss(features, lengths, targets, target_lengths)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def evaluate(self, num_utterances: Optional[int] = None, beam_width: Optional[int] = None, streaming: bool = False):
        """Held-out :class:`~emformer_edu.evaluation.TERResult` (greedy, full context, by default)."""
        n = len(self.valid_set) if num_utterances is None else min(num_utterances, len(self.valid_set))
        with single_thread():
            return evaluate(self.model, [self.valid_set[i] for i in range(n)], self.extractor, self.blank,
                            beam_width=beam_width, streaming=streaming)

    # -- the loop ---------------------------------------------------------------------
    def _emit(self, kind: str, loss: float, ter: Optional[float]) -> None:
        if self.callback is not None:
            lr = self.scheduler.get_last_lr()[0]
            self.callback(TrainEvent(kind, self.step, self.config.steps, loss, lr, ter, self.elapsed_s))

    def fit(self, steps: Optional[int] = None, checkpoint: Optional[str] = None, checkpoint_every: int = 0) -> List[Dict]:
        """Train until ``self.step == steps`` (default ``config.steps``); returns :attr:`history`.

        Evaluates every ``config.eval_every`` steps and at the end; saves to ``checkpoint``
        every ``checkpoint_every`` steps (0: only at the end) and at the end, if given.
        """
        c = self.config
        steps = c.steps if steps is None else steps
        if steps > c.steps:
            raise ValueError(f"steps ({steps}) is beyond config.steps ({c.steps}), where the schedule ends.")
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, desc="train", unit="step",
                   file=sys.stderr, dynamic_ncols=True)
        start = time.perf_counter() - self.elapsed_s
        recent: List[float] = []
        loss = math.nan
        try:
            while self.step < steps:
                loss = self.train_step()
                recent = (recent + [loss])[-50:]
                self.elapsed_s = time.perf_counter() - start
                bar.update(1)
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                                refresh=False)
                self._emit("step", loss, None)
                at_end = self.step == steps
                if at_end or (c.eval_every and self.step % c.eval_every == 0):
                    ter = self.evaluate().ter
                    self.elapsed_s = time.perf_counter() - start
                    self.history.append(dict(step=self.step, loss=sum(recent) / len(recent), ter=ter,
                                             elapsed_s=round(self.elapsed_s, 1)))
                    if self.progress:
                        bar.write(_eval_line(self.step, self.history[-1]["loss"], ter, self.elapsed_s), file=sys.stderr)
                    self._emit("eval", self.history[-1]["loss"], ter)
                if checkpoint and (at_end or (checkpoint_every and self.step % checkpoint_every == 0)):
                    self.save(checkpoint)
        finally:
            bar.close()
        self._emit("end", loss, self.history[-1]["ter"] if self.history else None)
        return self.history

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> Dict:
        """Everything :meth:`resume` needs, as plain values and tensors (loads with ``weights_only=True``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "train_config": dataclasses.asdict(self.config),
            "model_config": dataclasses.asdict(self.model_config),
            "synthetic_config": dataclasses.asdict(self.synthetic),
            "vocabulary": list(self.vocab.tokens),
            "global_stats": self.extractor.global_stats.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_state": torch.get_rng_state(),
            "history": list(self.history),
        }

    def save(self, path: str) -> None:
        """Write a resumable checkpoint to ``path``."""
        save_checkpoint(path, self.state_dict())

    @classmethod
    def resume(cls, path: str, callback: Optional[Callable[[TrainEvent], None]] = None, progress: bool = True,
               **config_overrides) -> "Trainer":
        """Rebuild the trainer saved at ``path`` and restore its state, ready to :meth:`fit` on.

        ``config_overrides`` change :class:`TrainConfig` fields (e.g. ``eval_every``); changing
        ``steps`` also reshapes the remaining learning-rate schedule.
        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is
        not a checkpoint or whose weights do not fit the saved model config.
        """
        blob = load_checkpoint(path)
        config = TrainConfig(**{**blob["train_config"], **config_overrides})
        synthetic = SyntheticConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in blob["synthetic_config"].items()})
        stats = GlobalStats(torch.tensor(blob["global_stats"]["mean"]), torch.tensor(blob["global_stats"]["invstddev"]))
        trainer = cls(config, blob["model_config"], synthetic, callback, progress, global_stats=stats)
        load_weights(trainer.model, blob["model"], source=repr(os.fspath(path)), config=trainer.model_config)
        trainer.optimizer.load_state_dict(blob["optimizer"])
        trainer.scheduler.load_state_dict(blob["scheduler"])
        if config.steps != blob["train_config"]["steps"]:
            # LambdaLR's lambda closed over the new config; re-evaluate the lr for the current step.
            for group, lam in zip(trainer.optimizer.param_groups, trainer.scheduler.lr_lambdas):
                group["lr"] = group["initial_lr"] * lam(trainer.scheduler.last_epoch)
        trainer.step = int(blob["step"])
        trainer.elapsed_s = float(blob["elapsed_s"])
        trainer.history = list(blob["history"])
        torch.set_rng_state(blob["rng_state"])
        return trainer


def _eval_line(step: int, loss: float, ter: float, elapsed_s: float) -> str:
    return f"step {step}: loss {loss:.3f}, held-out greedy TER {100 * ter:.2f}% ({elapsed_s:.0f} s)"


def _print_evaluations(event: TrainEvent) -> None:
    """Callback for ``--no-progress``: one line per evaluation, nothing per step."""
    if event.kind == "eval":
        print(_eval_line(event.step, event.loss, event.ter, event.elapsed_s), file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- export
def export_assets(trainer: Trainer, directory: str, name: str = "toy", extra: Optional[Dict] = None) -> Dict[str, str]:
    """Write the inference files :func:`emformer_edu.pretrained.load` reads; returns their paths.

    * ``{name}_emformer_rnnt.pt``: float32 ``state_dict`` only (no optimizer: small);
    * ``{name}_global_stats.json``: feature statistics in torchaudio's ``global_stats.json`` layout;
    * ``{name}_config.json``: model config, vocabulary, synthetic-corpus config, training config and
      results (``extra``, e.g. measured TERs).
    """
    os.makedirs(directory, exist_ok=True)
    paths = {k: os.path.join(directory, v.format(name=name)) for k, v in ASSET_FILES.items()}
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in trainer.model.state_dict().items()}
    torch.save(state, paths["weights"])
    trainer.extractor.global_stats.save(paths["stats"])
    config = {
        "model": dataclasses.asdict(trainer.model_config),
        "vocabulary": list(trainer.vocab.tokens),
        "blank": trainer.blank,
        "synthetic": dataclasses.asdict(trainer.synthetic),
        "training": {**dataclasses.asdict(trainer.config), "steps_done": trainer.step,
                     "history": trainer.history, **(extra or {})},
    }
    with open(paths["config"], "w") as f:
        json.dump(config, f, indent=2)
    return paths


# ----------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m emformer_edu.train",
        description="Train a small streaming Emformer RNN-T on emformer_edu's synthetic speech (a CPU is enough).",
    )
    p.add_argument("--out", default="runs/toy", help="directory for checkpoint.pt and history.json (default: runs/toy)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from this checkpoint; settings come from it")
    p.add_argument("--export", metavar="DIR", help="also write the inference files (weights, stats, config) here")
    p.add_argument("--name", default="toy", help="file name prefix of the exported files (default: toy)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"optimizer steps; the schedule ends there (default: {d.steps}; with --resume: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"utterances per step (default: {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak Adam learning rate (default: {d.lr})")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps,
                   help=f"linear warm-up steps before the cosine decay (default: {d.warmup_steps})")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help=f"max gradient norm, 0: off (default: {d.grad_clip})")
    p.add_argument("--spec-augment", action="store_true", help="mask random mel bands and frame spans")
    p.add_argument("--num-train", type=int, default=d.num_train,
                   help=f"training utterances, featurized once (default: {d.num_train})")
    p.add_argument("--num-valid", type=int, default=d.num_valid,
                   help=f"held-out utterances for the greedy TER (default: {d.num_valid})")
    p.add_argument("--eval-every", type=int, default=d.eval_every,
                   help=f"steps between held-out evaluations, 0: at the end only (default: {d.eval_every})")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints, 0: at the end only (default: 0)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"initial weights, data order, dropout (default: {d.seed})")
    p.add_argument("--model-config", metavar="JSON", help="file with emformer_rnnt_model arguments overriding the toy model's")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); use 1 on a busy machine")
    p.add_argument("--no-progress", action="store_true", help="no progress bar; one line per evaluation instead")
    return p


def main(argv: Optional[Sequence[str]] = None) -> Trainer:
    """Command-line entry point; returns the trainer (handy in tests)."""
    args = _parser().parse_args(argv)
    d = TrainConfig()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    callback = _print_evaluations if args.no_progress else None
    if args.resume:
        overrides = {} if args.steps is None else {"steps": args.steps}
        trainer = Trainer.resume(args.resume, callback=callback, progress=not args.no_progress, **overrides)
    else:
        config = TrainConfig(
            steps=d.steps if args.steps is None else args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
            grad_clip=args.grad_clip, spec_augment=args.spec_augment, num_train=args.num_train,
            num_valid=args.num_valid, eval_every=args.eval_every, seed=args.seed,
        )
        vocab_size = Vocabulary.letters(SyntheticConfig().num_tokens).num_symbols
        model_config = EmformerRNNTConfig.toy(vocab_size)
        if args.model_config:
            with open(args.model_config) as f:
                model_config = model_config.replace(**json.load(f))
        trainer = Trainer(config, model_config, callback=callback, progress=not args.no_progress)
    print(f"model: {sum(p.numel() for p in trainer.model.parameters())} parameters; data ready in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    checkpoint = os.path.join(args.out, "checkpoint.pt")
    history = trainer.fit(checkpoint=checkpoint, checkpoint_every=args.checkpoint_every)
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f, indent=2)
    wall = time.perf_counter() - started
    print(f"done: step {trainer.step}, held-out greedy TER {100 * history[-1]['ter']:.2f}%, "
          f"wall time {wall:.0f} s; checkpoint {checkpoint}", file=sys.stderr)
    if args.export:
        paths = export_assets(trainer, args.export, args.name, extra={"wall_time_s": round(wall, 1)})
        print("exported " + ", ".join(paths.values()), file=sys.stderr)
    return trainer


if __name__ == "__main__":
    main()
