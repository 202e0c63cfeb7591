"""The training loop: an Emformer RNN-T learns a corpus on a laptop CPU in minutes.

The recipe follows torchaudio's LibriSpeech Emformer RNN-T training (``examples/asr/emformer_rnnt``),
scaled down. Features come from a :class:`~emformer_edu.data.features.FeatureExtractor` with
statistics of the training set, right-padded with R zero frames. The predictor reads the targets
*prepended with blank* (blank = last id, the start symbol); the loss scores the targets without it::

    logits, logit_lengths, _, _ = model(features, lengths, [blank] + targets, target_lengths + 1)
    loss = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=blank)

with ``features (B, T + R, F)`` and ``logits (B, T', U + 1, V)`` (``ctc_weight`` adds an auxiliary CTC loss
on the encoder output, :mod:`emformer_edu.rnnt.ctc`, from the same forward pass). Adam with a linear warm-up then
cosine decay (:func:`warmup_cosine`), gradient-norm clipping, optional SpecAugment, an optional moving average of the
weights that evaluation and export read (``ema_decay``, :mod:`.averaging`); every
``eval_every`` steps the held-out greedy token error rate (TER; for the spoken and on-disk corpora
also the character and word error rates, CER and WER). What each step trains on (a fixed synthetic
set, fresh spoken sentences or recordings from disk, read by DataLoader workers) and in which tokens
(characters or SentencePiece pieces) is :mod:`.corpora`'s business.

Progress goes to a ``tqdm`` bar on stderr (``progress=False`` turns it off); ``callback`` receives a
:class:`TrainEvent` after every step and evaluation, so a notebook can drive a widget instead
(``emformer_edu.teaching.widgets.WidgetProgress``). Checkpoint files: :mod:`.checkpoints`; command line: :mod:`.cli`.

Several processes (``torchrun``, :mod:`.distributed`): a trainer built while a process group is
initialized trains its rank's shard of every global batch through ``DistributedDataParallel``;
only rank 0 evaluates and saves. ``self.model`` is always the plain (unwrapped) model. ``device``
(e.g. ``"cuda:0"``) moves the model and each step's batch there; data and evaluation stay on the CPU.

Notation: B batch, T input frames, T' encoder frames, U target length, V vocabulary
(tokens + blank), D model dim, F mel bins, R right context.
"""
import contextlib
import copy
import dataclasses
import math
import os
import sys
import time
from typing import Callable, ContextManager, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from tqdm import tqdm

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import FeatureExtractor, GlobalStats, compute_global_stats
from ..dropout import global_batch
from ..rnnt.ctc import ctc_loss
from ..rnnt.loss import rnnt_loss
from ..runtime import single_thread
from ..transducer.model import build_model
from . import corpora, distributed
from .averaging import WeightAverage
from .batches import FeatureCollate, length_buckets, prepend_blank, spec_augment
from .checkpoints import (
    load_checkpoint, restore_trainer, save_checkpoint, saved_corpus_config, saved_vocabulary, trainer_state,
)
from .config import TrainConfig
from .metrics import TERResult, evaluate

__all__ = ["TrainEvent", "Trainer", "warmup_cosine"]


def _mean(costs: torch.Tensor, rows: Optional[int]) -> torch.Tensor:
    """Mean of per-utterance ``costs (B,)``, or over the first ``rows`` only (a distributed shard's phantom
    is left out; rows 0, a phantom-only part: zero, still connected to the graph)."""
    if rows is None:
        return costs.mean()
    return costs[:rows].sum() / rows if rows else costs.sum() * 0.0


class TrainEvent(NamedTuple):
    """What a progress callback receives.

    kind: ``"step"`` (after an optimizer step), ``"eval"`` (after a held-out evaluation) or ``"end"``.
    loss: mean RNN-T training loss (nats per utterance); ter: held-out greedy TER as a fraction
    (``"eval"`` and ``"end"`` only, else ``None``); for the corpora of words ``wer`` is the word error
    rate and ``cer`` the character error rate (else ``None``; over characters the TER is the CER, over
    SentencePiece pieces it is the piece error rate); ``valid_loss``: the mean RNN-T loss on the
    held-out utterances (``"eval"`` and ``"end"`` only).
    """

    kind: str
    step: int
    total_steps: int
    loss: float
    lr: float
    ter: Optional[float]
    elapsed_s: float
    wer: Optional[float] = None
    valid_loss: Optional[float] = None
    cer: Optional[float] = None

    def summary(self) -> str:
        cer = self.ter if self.cer is None else self.cer
        scores = (f"TER {100 * self.ter:.2f}%" if self.wer is None
                  else f"CER {100 * cer:.2f}%, WER {100 * self.wer:.2f}%")
        held_out = "" if self.valid_loss is None else f" (held-out loss {self.valid_loss:.3f})"
        return (f"step {self.step}: loss {self.loss:.3f}{held_out}, held-out greedy {scores} "
                f"({self.elapsed_s:.0f} s)")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_scale: float) -> float:
    """Learning-rate factor: linear 0 -> 1 over ``warmup_steps``, then cosine 1 -> ``final_scale``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_scale + (1 - final_scale) * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    """Owns the model, data, optimizer and schedule; :meth:`fit` trains, :meth:`save` / :meth:`resume` persist.

    Args:
        config: :class:`TrainConfig`; ``config.corpus`` picks the data.
        model_config: :class:`EmformerRNNTConfig` (or its dict); default ``EmformerRNNTConfig.toy()``.
            ``num_symbols`` must equal the vocabulary's (tokens + blank), ``input_dim`` the 80 mel bins.
        corpus_config: the corpus's settings, a :class:`SyntheticConfig`, :class:`SpokenConfig`,
            :class:`LibriSpeechConfig` or :class:`ManifestConfig` (its defaults if ``None``; the on-disk
            corpora need theirs: where the data is).
        callback: called with a :class:`TrainEvent` after every step and evaluation.
        progress: show a ``tqdm`` bar on stderr (rank 0 only when distributed).
        global_stats: feature statistics to use instead of computing them (resume uses it).
        device: where the model trains (default ``"cpu"``; e.g. ``"cuda:0"``). Data, features, SpecAugment
            and evaluation stay on the CPU (evaluation decodes a CPU copy of the model).
        vocabulary: the tokens to use instead of making them (resume passes the saved SentencePiece model,
            so a resumed run does not train a new one).

    Example::

        trainer = Trainer(TrainConfig(steps=200), progress=False)
        history = trainer.fit()
        trainer.save("runs/toy/checkpoint.pt")
    """

    def __init__(
        self, config: Optional[TrainConfig] = None, model_config: Union[EmformerRNNTConfig, Dict, None] = None,
        corpus_config: Optional[corpora.CorpusConfig] = None, callback: Optional[Callable[[TrainEvent], None]] = None,
        progress: bool = True, global_stats: Optional[GlobalStats] = None,
        device: Union[str, torch.device, None] = None, vocabulary: Optional[Vocabulary] = None,
    ):
        self.config = c = config if config is not None else TrainConfig()
        self.corpus_config = corpora.corpus_config(c.corpus, corpus_config)
        # On-disk corpora: the file lists and transcripts, read once (the tokenizer and the datasets use them).
        recordings = corpora.transcripts(c, self.corpus_config)
        self.vocab = vocabulary if vocabulary is not None else \
            corpora.vocabulary(c.corpus, self.corpus_config, recordings)
        self.blank = self.vocab.blank
        if model_config is None:
            model_config = EmformerRNNTConfig.toy(self.vocab.num_symbols)
        elif isinstance(model_config, dict):
            model_config = EmformerRNNTConfig.from_dict(model_config)
        if model_config.num_symbols != self.vocab.num_symbols:
            raise ValueError(f"model_config num_symbols ({model_config.num_symbols}) must be the vocabulary size "
                             f"{self.vocab.num_symbols} ({self.vocab.num_tokens} tokens + blank).")
        if model_config.input_dim != 80:
            raise ValueError(f"model_config input_dim must be 80 (mel bins), got {model_config.input_dim}.")
        self.model_config, self.callback = model_config, callback
        self.dist = distributed.current()  # one process, or this rank of torchrun's N
        self.progress = progress and self.dist.is_main
        distributed.check_batch_size(c.batch_size, self.dist.world_size)

        torch.manual_seed(c.seed)  # initial weights and dropout
        self.model = build_model(model_config)  # initialized on the CPU: the same weights on any device
        self.device = torch.device("cpu" if device is None else device)
        if self.device.type != "cpu":
            self.model.to(self.device)
        train_set, self.valid_set = corpora.datasets(c, self.corpus_config, self.vocab, recordings)
        if global_stats is None:
            with single_thread():
                global_stats = compute_global_stats(
                    train_set[i].waveform for i in corpora.stats_indices(c, len(train_set)))
        self.extractor = FeatureExtractor(global_stats, right_padding=model_config.right_context_length)
        # Fixed (synthetic: train_set is a FeatureSet), fresh (spoken) or shuffled (on disk) batches.
        self.batches = corpora.batch_source(c, train_set, self.extractor, self.dist)
        self.train_set = self.batches.train_set
        self._valid_utterances: List = []  # made once, on the first evaluation

        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=(0.9, 0.98), eps=1e-9)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, c.warmup_steps, c.steps, c.final_lr_scale))
        # What evaluation and export read when ema_decay > 0 (the optimizer never sees it).
        self.average = WeightAverage(self.model, c.ema_decay) if c.ema_decay > 0 else None
        self.step = 0
        self.history: List[Dict] = []  # one entry per evaluation: step, loss, ter (spoken: cer, wer), elapsed_s
        self.elapsed_s = 0.0
        self._ddp: Optional[torch.nn.parallel.DistributedDataParallel] = None  # made on the first step

    def _train_model(self) -> torch.nn.Module:
        """The model that training steps run: ``self.model``, or on N processes its DDP wrapper."""
        if not self.dist.is_distributed:
            return self.model
        if self._ddp is None:  # after resume's restore: DDP broadcasts rank 0's weights (the same anyway)
            self._ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=None if self.device.type == "cpu" else [self.device])
        return self._ddp

    # -- one step ---------------------------------------------------------------------
    def loss(self, features, lengths, targets, target_lengths, model: Optional[torch.nn.Module] = None,
             rows: Optional[int] = None) -> torch.Tensor:
        """Mean RNN-T loss: features ``(B, T + R, F)``, lengths ``(B,)`` (real frames), targets ``(B, U)``
        without blank, target_lengths ``(B,)`` -> scalar. The logits are ``(B, T', U + 1, V)``.
        ``model``: what runs the forward (default ``self.model``; training steps pass the DDP wrapper);
        ``rows``: the mean over the first ``rows`` utterances only (a distributed shard's phantom is left out)."""
        return self.losses(features, lengths, targets, target_lengths, model, rows)[0]

    def losses(self, features, lengths, targets, target_lengths, model: Optional[torch.nn.Module] = None,
               rows: Optional[int] = None, ctc: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(RNN-T loss, CTC loss or None)``, each a mean as in :meth:`loss`. With ``ctc`` the encoder's
        output is also scored by CTC through the joiner (:func:`~emformer_edu.rnnt.ctc.ctc_loss`),
        taken from the same forward pass (a hook on the transcriber, so it works through DDP too)."""
        model = self.model if model is None else model
        encoded: List = []
        hook = self.model.transcriber.register_forward_hook(
            lambda module, inputs, output: encoded.append(output)) if ctc else None
        try:
            logits, logit_lengths, _, _ = model(features, lengths, prepend_blank(targets, self.blank),
                                                target_lengths + 1)
        finally:
            if hook is not None:
                hook.remove()
        # FastEmit changes only the gradient (the value stays -log P), so held-out losses compare across runs.
        costs = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=self.blank,
                          reduction="mean" if rows is None else "none", fastemit_lambda=self.config.fastemit_lambda)
        ctc_costs = None
        if ctc:
            source_encodings, source_lengths = encoded[0]
            ctc_costs = _mean(ctc_loss(self.model.joiner, source_encodings, source_lengths, targets, target_lengths,
                                       self.blank), rows)
        return (costs if rows is None else _mean(costs, rows)), ctc_costs

    def train_step(self) -> float:
        """One optimizer step on the batch for ``self.step``; returns its loss (on N processes: the mean
        over the global batch, the same on every rank)."""
        c = self.config
        features, lengths, targets, target_lengths = self.batches.batch(self.step)  # N processes: this rank's shard
        b, augment = lengths.numel(), dict(all_lengths=None, offset=0)
        if self.dist.is_distributed:  # the global batch's lengths: SpecAugment draws for all of them
            all_lengths, all_target_lengths = distributed.gather_lengths(lengths, target_lengths)
            augment = dict(all_lengths=all_lengths, offset=self.dist.rank * b)
        if c.spec_augment:  # seeded by the step, so a resumed run masks the same frames
            g = torch.Generator().manual_seed(c.seed * 1_000_003 + self.step + 7)
            features = spec_augment(features, lengths, g, c.freq_masks, c.freq_mask_width, c.time_masks,
                                    c.time_mask_width, **augment)
        if self.dist.is_distributed:  # this rank's utterances of each part, laid out as in the one-process part
            parts = list(distributed.shard_parts(features, lengths, targets, target_lengths, all_lengths,
                                                 all_target_lengths, augment["offset"], c.length_buckets))
        else:  # (features, lengths, targets, target_lengths, rows: all of them, where: the whole batch)
            parts = [(*part, None, None) for part in length_buckets(features, lengths, targets, target_lengths,
                                                                    c.length_buckets)]
        model = self._train_model()
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for i, (*part, rows, where) in enumerate(parts):
            # The batch's loss is the mean over its B utterances: each part adds its share. On N processes
            # the sum of this rank's rows' losses / b (a phantom row left out), and DDP averages the
            # gradients over the ranks (sum of all B losses / B) once, in the last part's backward.
            share = part[1].numel() / b if rows is None else rows / b
            if self.device.type != "cpu":
                part = [t.to(self.device) for t in part]
            accumulate = self._ddp is not None and i < len(parts) - 1
            no_sync = self._ddp.no_sync() if accumulate else contextlib.nullcontext()
            # N processes: dropout draws the whole part's masks, as one process would, and keeps this rank's rows.
            masks = contextlib.nullcontext() if where is None else global_batch(*where)
            with no_sync, masks:
                rnnt, ctc = self.losses(*part, model=model, rows=rows, ctc=c.ctc_weight > 0)
                rnnt = rnnt * share
                (rnnt if ctc is None else rnnt + (c.ctc_weight * share) * ctc).backward()
            loss += rnnt.item()  # the reported loss is the RNN-T loss alone, like the held-out loss
        loss = distributed.global_mean(loss)
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.average is not None:
            self.average.update(self.model)
        self.step += 1
        return loss

    def weights_to_ship(self) -> ContextManager[torch.nn.Module]:
        """``with trainer.weights_to_ship():`` inside, ``self.model`` holds what evaluation and export read:
        the weight average (``ema_decay`` > 0, once a step has run), else the trained weights themselves."""
        if self.average is None or self.average.updates == 0:
            return contextlib.nullcontext(self.model)
        return self.average.applied(self.model)

    def _held_out(self, num_utterances: Optional[int]) -> List:
        n = len(self.valid_set) if num_utterances is None else min(num_utterances, len(self.valid_set))
        with single_thread():
            made = len(self._valid_utterances)
            self._valid_utterances += [self.valid_set[i] for i in range(made, n)]
        return self._valid_utterances[:n]

    def held_out_loss(self, num_utterances: Optional[int] = None, batch_size: int = 50) -> float:
        """Mean RNN-T loss (nats per utterance) on the held-out utterances, in eval mode (no dropout):
        the same quantity as the training loss, on audio training never heard, so the two curves
        side by side show over-fitting (a gap that grows) or its absence. With ``ema_decay`` > 0: the
        weight average's loss (:meth:`weights_to_ship`)."""
        utterances = self._held_out(num_utterances)
        was_training = self.model.training
        self.model.eval()
        total = 0.0
        try:
            with torch.no_grad(), self.weights_to_ship():
                for i in range(0, len(utterances), batch_size):
                    part = utterances[i: i + batch_size]
                    # The training batches' own layout: features (B, T + R, F), lengths, targets, target lengths.
                    batch = [t.to(self.device) for t in FeatureCollate(self.extractor)(part)]
                    total += float(self.loss(*batch)) * len(part)
        finally:
            self.model.train(was_training)
        return total / len(utterances)

    def evaluate(self, num_utterances: Optional[int] = None, beam_width: Optional[int] = None,
                 streaming: bool = False) -> TERResult:
        """Held-out :class:`~emformer_edu.train.metrics.TERResult` (greedy, full context, by default);
        with CER and WER for the spoken and on-disk corpora (texts from ``vocab.decode``). With
        ``ema_decay`` > 0 it scores the weight average (:meth:`weights_to_ship`)."""
        utterances = self._held_out(num_utterances)
        with self.weights_to_ship(), single_thread():
            model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
            vocab = self.vocab if corpora.has_words(self.config.corpus) else None
            return evaluate(model, utterances, self.extractor, self.blank,
                            beam_width=beam_width, streaming=streaming, vocab=vocab)

    # -- the loop ---------------------------------------------------------------------
    def _emit(self, kind: str, loss: float, ter: Optional[float], wer: Optional[float] = None,
              valid_loss: Optional[float] = None, cer: Optional[float] = None) -> None:
        event = TrainEvent(kind, self.step, self.config.steps, loss, self.scheduler.get_last_lr()[0], ter,
                           self.elapsed_s, wer, valid_loss, cer)
        if kind == "eval" and self.progress:
            tqdm.write(event.summary(), file=sys.stderr)  # above the bar, which tqdm redraws
        if self.callback is not None:
            self.callback(event)

    def fit(self, steps: Optional[int] = None, checkpoint: Optional[str] = None, checkpoint_every: int = 0) -> List[Dict]:
        """Train until ``self.step == steps`` (default ``config.steps``); returns :attr:`history`.

        Evaluates every ``config.eval_every`` steps and at the end; saves to ``checkpoint``
        every ``checkpoint_every`` steps (0: only at the end) and at the end, if given. DataLoader
        workers (spoken corpus) are stopped on return.
        """
        c = self.config
        steps = c.steps if steps is None else steps
        if steps > c.steps:
            raise ValueError(f"steps ({steps}) is beyond config.steps ({c.steps}), where the schedule ends.")
        start = time.perf_counter() - self.elapsed_s  # a resumed run keeps counting its time
        recent: List[float] = []  # the last 50 losses: one step's loss is too noisy to read
        loss = math.nan
        with tqdm(total=steps, initial=self.step, disable=not self.progress, desc="train", unit="step",
                  file=sys.stderr, dynamic_ncols=True) as bar, contextlib.closing(self.batches):
            while self.step < steps:
                loss = self.train_step()
                recent = (recent + [loss])[-50:]
                self.elapsed_s = time.perf_counter() - start
                bar.update(1)
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                                refresh=False)
                self._emit("step", loss, None)
                at_end = self.step == steps
                evaluating = at_end or (c.eval_every and self.step % c.eval_every == 0)
                saving = checkpoint and (at_end or (checkpoint_every and self.step % checkpoint_every == 0))
                if evaluating and self.dist.is_main:  # N processes: rank 0 alone, on the unwrapped model
                    result = self.evaluate()
                    valid_loss = self.held_out_loss()
                    self.elapsed_s = time.perf_counter() - start
                    mean_loss = sum(recent) / len(recent)
                    self.history.append(dict(step=self.step, loss=mean_loss, valid_loss=valid_loss,
                                             **result.scores(), elapsed_s=round(self.elapsed_s, 1)))
                    self._emit("eval", mean_loss, result.ter, result.wer, valid_loss, result.cer)
                if saving:
                    self.save(checkpoint)  # rank 0 only
                if (evaluating or saving) and self.dist.is_distributed:
                    distributed.barrier()  # the other ranks wait for rank 0 here
        last = self.history[-1] if self.history else {}
        self._emit("end", loss, last.get("ter"), last.get("wer"), last.get("valid_loss"), last.get("cer"))
        return self.history

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write a resumable checkpoint to ``path`` (atomically; contents: :func:`.checkpoints.trainer_state`).

        On N processes only rank 0 writes (the others return at once): every rank holds the same state."""
        if self.dist.is_main:
            save_checkpoint(path, trainer_state(self))

    @classmethod
    def resume(cls, path: str, callback: Optional[Callable[[TrainEvent], None]] = None, progress: bool = True,
               device: Union[str, torch.device, None] = None, corpus_overrides: Optional[Dict] = None,
               **config_overrides) -> "Trainer":
        """Rebuild the trainer saved at ``path`` and restore its state, ready to :meth:`fit` on.

        ``config_overrides`` change :class:`TrainConfig` fields (e.g. ``eval_every``); changing ``steps``
        also reshapes the remaining learning-rate schedule (and, for the spoken corpus, how many
        fresh items there are). ``corpus_overrides`` change fields of the corpus settings (e.g. the
        LibriSpeech ``root``, if the data moved). A SentencePiece vocabulary comes from the checkpoint,
        not from training a new one. Raises ``FileNotFoundError`` for a missing file and ``ValueError``
        for a file that is not a checkpoint, whose weights do not fit its config, for another corpus
        or another tokenizer.
        """
        blob = load_checkpoint(path)
        config = TrainConfig(**{**blob["train_config"], **config_overrides})
        settings = saved_corpus_config(blob, config.corpus, path)
        for name, value in (corpus_overrides or {}).items():
            if not hasattr(settings, name):
                raise ValueError(f"{os.fspath(path)!r} was trained on the {config.corpus!r} corpus, whose settings "
                                 f"have no {name!r}.")
            if name in ("tokenizer", "sentencepiece_vocab_size") and value != getattr(settings, name):
                raise ValueError(f"{os.fspath(path)!r} was trained with {name} {getattr(settings, name)!r}; a "
                                 f"resumed run cannot change it (the model's outputs are those tokens).")
        if corpus_overrides:  # e.g. the data moved: a new root
            settings = dataclasses.replace(settings, **corpus_overrides)
        trainer = cls(config, blob["model_config"], settings, callback, progress,
                      global_stats=GlobalStats(**blob["global_stats"]), device=device,
                      vocabulary=saved_vocabulary(blob, path))
        restore_trainer(trainer, blob, source=repr(os.fspath(path)))
        return trainer
