"""Notebook 09 (training): the warm-up learning rate, the predictor's input length, steps per epoch.

Read from a real (tiny) :class:`~emformer_edu.train.Trainer`: its scheduler after 19 steps, the
predictor input its loss builds, and where its batch order (:func:`~emformer_edu.train.batch_indices`)
starts a new epoch.
"""
import functools

import torch

from ... import train
from ._shared import Exercise


@functools.lru_cache(maxsize=None)
def _trainer() -> "train.Trainer":
    """lr 2e-3 with 40 warm-up steps of 150; one utterance each, since only the schedule and loss are read."""
    config = train.TrainConfig(steps=150, warmup_steps=40, lr=2e-3, final_lr_scale=0.02, num_train=1,
                               num_valid=1, stats_utterances=1)
    return train.Trainer(config, progress=False)


def _warmup_lr(step: int = 19) -> float:
    # Advance the trainer's own optimizer and schedule to `step` (never back, so a repeat call agrees).
    trainer = _trainer()
    while trainer.scheduler.last_epoch < step:
        trainer.optimizer.step()  # no gradients, so no change; the scheduler expects it before its own step
        trainer.scheduler.step()
    return trainer.optimizer.param_groups[0]["lr"]


def _predictor_length(num_tokens: int = 9) -> int:
    # The trainer's loss feeds the predictor; a hook sees what it got.
    trainer, seen = _trainer(), []

    def hook(module, args, kwargs):
        seen.append((kwargs["input"] if "input" in kwargs else args[0]).shape[1])

    handle = trainer.model.predictor.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        trainer.loss(torch.zeros(1, 100 + 4, 80), torch.tensor([100]), torch.zeros(1, num_tokens, dtype=torch.int32),
                     torch.tensor([num_tokens], dtype=torch.int32))
    finally:
        handle.remove()
    return seen[0]


def _steps_per_epoch(num_train: int = 900, batch_size: int = 24) -> int:
    # The trainer's own batch order: the first step that repeats an utterance has begun a new epoch.
    seen = set()
    for step in range(num_train + 1):
        batch = set(train.batch_indices(step, num_train, batch_size))
        if batch & seen:
            return step
        seen |= batch
    raise ValueError("no utterance repeated within num_train + 1 steps")


EXERCISES = {
    "09.warmup_lr": Exercise("learning rate during step index 19 with lr 2e-3 and 40 warm-up steps", _warmup_lr),
    "09.predictor_length": Exercise("predictor input length for a transcript of 9 tokens", _predictor_length),
    "09.steps_per_epoch": Exercise("optimizer steps per epoch for 900 utterances in batches of 24", _steps_per_epoch),
}
