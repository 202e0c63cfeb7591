"""An exponential moving average (EMA) of the weights: what training evaluates and exports when ``ema_decay`` > 0.

Adam's last iterate still moves with the noise of its last few batches (B = 16 sentences each). An
average of the recent iterates smooths that noise out (Polyak and Juditsky 1992). After optimizer
step n = 1, 2, ... with weights w_n::

    m_n = decay * m_{n-1} + (1 - decay) * w_n,   m_0 = 0
    average_n = m_n / (1 - decay**n)             # Adam's bias correction: the first steps are not pulled to 0

which is the weighted mean of w_1 ... w_n with weights proportional to decay**(n - k): it looks back
about ``1 / (1 - decay)`` steps (1,000 for 0.999). It never feeds back into training: it is a second
copy of the ``state_dict`` (floating-point tensors averaged, integer buffers copied), read only by
evaluation and export, so the model and its keys stay torchaudio's.

Measured on the shipped spoken recipe (README, "How the recipe got here"): far ahead of the weights
halfway through, behind them at the end. The cosine schedule already ends at 2 % of the peak learning
rate, so its last weights are a quiet average; the EMA mixes in older, worse ones. So it is off by default.
"""
import contextlib
from typing import Dict, Iterator

import torch

__all__ = ["WeightAverage"]


class WeightAverage:
    """The running average of ``model``'s weights (see the module docstring).

    ``update(model)`` after every optimizer step; :meth:`average` is the bias-corrected average;
    ``with average.applied(model):`` puts it into the model and the trained weights back on exit;
    ``state_dict`` / ``load_state_dict`` for checkpoints.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not (isinstance(decay, (int, float)) and 0 < decay < 1):
            raise ValueError(f"the average's decay must be in (0, 1), got {decay!r}.")
        self.decay = float(decay)
        self.updates = 0
        self.moment: Dict[str, torch.Tensor] = {  # m_n above; integer buffers: their latest value
            k: torch.zeros_like(v) if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One step: ``m = decay * m + (1 - decay) * w`` for every floating-point tensor of ``model``."""
        for name, value in model.state_dict().items():
            moment = self.moment[name]
            if value.is_floating_point():
                moment.lerp_(value, 1 - self.decay)
            else:  # e.g. a step counter: nothing to average
                moment.copy_(value)
        self.updates += 1

    def average(self) -> Dict[str, torch.Tensor]:
        """The averaged ``state_dict``: ``m_n / (1 - decay**n)`` (before any update: ``ValueError``)."""
        if self.updates == 0:
            raise ValueError("the weight average has no update yet: it is an average of the weights after each step.")
        correction = 1 - self.decay ** self.updates
        return {k: v / correction if v.is_floating_point() else v.clone() for k, v in self.moment.items()}

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Inside the block ``model`` holds the average; on exit its own (trained) weights come back."""
        trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.average())
        try:
            yield model
        finally:
            model.load_state_dict(trained)

    def state_dict(self) -> Dict:
        return {"decay": self.decay, "updates": self.updates, "moment": dict(self.moment)}

    def load_state_dict(self, state: Dict) -> None:
        """Restore a :meth:`state_dict`; ``ValueError`` if it belongs to another model or another decay."""
        if set(state["moment"]) != set(self.moment):
            raise ValueError("the saved weight average does not have the model's parameter names.")
        if float(state["decay"]) != self.decay:
            raise ValueError(f"the saved weight average has decay {state['decay']}, this one {self.decay}: "
                             f"resuming cannot change ema_decay.")
        self.updates = int(state["updates"])
        self.moment = {k: v.detach().clone().to(self.moment[k].device) for k, v in state["moment"].items()}
