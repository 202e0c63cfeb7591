"""A parameter-free tap that the model calls at the points a learner may want to see.

``Probe`` returns nothing and owns no parameters, so the ``state_dict`` and every number
the model computes are unchanged. :func:`emformer_edu.record` attaches a forward hook to
probes while it is active and copies what they were called with; without a recording a
probe call costs one ``Module.__call__``. All instrumentation uses forward hooks (see
:mod:`emformer_edu.teaching.recorder`), so the model never imports the teaching aids.
"""
import torch


class Probe(torch.nn.Module):
    """``probe(name=tensor_or_value, ...)`` does nothing; forward hooks see the keyword arguments."""

    def forward(self, **context) -> None:
        return None
