"""Notebook 09 (training): write the learning-rate schedule; the predictor's input length; steps per epoch;
write CTC's collapse.

The schedule is a coding exercise: the learner's function must give the factor the trainer's own
``LambdaLR`` applies at every step (:func:`~emformer_edu.train.warmup_cosine`, read back from a real
scheduler below). The other two are read from a real (tiny) :class:`~emformer_edu.train.Trainer`: the
predictor input its loss builds, and where its batch order (:func:`~emformer_edu.train.batch_indices`)
starts a new epoch. The collapse is a coding exercise too, checked against
:func:`~emformer_edu.rnnt.ctc.ctc_collapse` on hand-made frame sequences and on the shipped spoken
encoder's best symbol per frame for a held-out sentence.
"""
import functools

import torch

from ... import train
from ...rnnt.ctc import ctc_collapse, ctc_logits
from ._shared import Exercise, spoken


@functools.lru_cache(maxsize=None)
def _trainer() -> "train.Trainer":
    """lr 2e-3 with 40 warm-up steps of 150; one utterance each, since only the schedule and loss are read."""
    config = train.TrainConfig(steps=150, warmup_steps=40, lr=2e-3, final_lr_scale=0.02, num_train=1,
                               num_valid=1, stats_utterances=1)
    return train.Trainer(config, progress=False)


def _scheduled_factor(step: int, warmup_steps: int, total_steps: int, final_scale: float) -> float:
    """The factor a real trainer's scheduler applies during ``step``: its learning rate over the peak."""
    config = train.TrainConfig(steps=total_steps, warmup_steps=warmup_steps, lr=1.0, final_lr_scale=final_scale,
                               num_train=1, num_valid=1, stats_utterances=1)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: train.warmup_cosine(s, config.warmup_steps, config.steps, config.final_lr_scale))
    for _ in range(step):
        optimizer.step()  # no gradients, so no change; the scheduler expects it before its own step
        scheduler.step()
    return optimizer.param_groups[0]["lr"] / config.lr


def _schedule_cases():
    # Both ends of the warm-up, the peak, the middle and end of the decay, and past the end (it stays put).
    fixed = [dict(step=0, warmup_steps=40, total_steps=150, final_scale=0.02),
             dict(step=39, warmup_steps=40, total_steps=150, final_scale=0.02),
             dict(step=40, warmup_steps=40, total_steps=150, final_scale=0.02),
             dict(step=95, warmup_steps=40, total_steps=150, final_scale=0.02),
             dict(step=150, warmup_steps=40, total_steps=150, final_scale=0.02),
             dict(step=160, warmup_steps=40, total_steps=150, final_scale=0.1)]
    g = torch.Generator().manual_seed(9)
    drawn = []
    for _ in range(6):
        warmup = int(torch.randint(1, 300, (1,), generator=g))
        total = warmup + int(torch.randint(1, 4000, (1,), generator=g))
        drawn.append(dict(step=int(torch.randint(0, total + 1, (1,), generator=g)), warmup_steps=warmup,
                          total_steps=total, final_scale=round(float(torch.rand(1, generator=g)) * 0.2, 3)))
    return fixed + drawn


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


def _collapse_cases():
    # By hand first (a blank between two a's keeps both; runs merge; only blanks: nothing), then a real one.
    cases = [dict(frame_tokens=[4, 1, 1, 4, 1, 2, 4], blank=4), dict(frame_tokens=[1, 1, 1], blank=4),
             dict(frame_tokens=[4, 4, 4], blank=4), dict(frame_tokens=[], blank=4),
             dict(frame_tokens=[2, 4, 2, 2, 3], blank=4), dict(frame_tokens=[0, 0, 1, 0], blank=1)]
    model = spoken()
    utt = model.held_out(1)[0]
    feats = model.features(utt.waveform).unsqueeze(0)
    with torch.no_grad():
        enc, _ = model.model.transcribe(feats, torch.tensor([feats.size(1) - model.right_context_length]))
        best = ctc_logits(model.model.joiner, enc)[0].argmax(-1).tolist()
    return cases + [dict(frame_tokens=best, blank=model.blank)]


EXERCISES = {
    "09.lr_schedule": Exercise("write lr_factor(step, warmup_steps, total_steps, final_scale): the factor of the peak "
                               "learning rate during step `step` (linear warm-up, then cosine decay)",
                               _scheduled_factor, _schedule_cases),
    "09.predictor_length": Exercise("predictor input length for a transcript of 9 tokens", _predictor_length),
    "09.steps_per_epoch": Exercise("optimizer steps per epoch for 900 utterances in batches of 24", _steps_per_epoch),
    "09.ctc_collapse": Exercise("write collapse(frame_tokens, blank): CTC's map from one symbol per frame to a "
                                "transcript (merge runs of a symbol, then drop blanks)",
                                lambda frame_tokens, blank: ctc_collapse(frame_tokens, blank), _collapse_cases),
}
