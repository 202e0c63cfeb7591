"""Moving between emformer_edu and torchaudio: same weights, same numbers.

``torchaudio_twin(model)`` builds torchaudio's ``RNNT`` with the same configuration, loads
this model's ``state_dict`` into it with ``strict=True`` and matches dtype, device and
train/eval mode. ``from_torchaudio(ta_model, **config)`` goes the other way.
"""
from dataclasses import asdict

import torch

from .model import RNNT, emformer_rnnt_model


def torchaudio_twin(model: RNNT) -> torch.nn.Module:
    """A ``torchaudio.models.RNNT`` holding exactly ``model``'s weights."""
    import torchaudio  # imported lazily: the library itself never needs it

    if not hasattr(model, "config"):
        raise ValueError("model has no .config; build it with emformer_rnnt_model() or emformer_rnnt_base().")
    param = next(model.parameters())
    # Cast before loading: load_state_dict copies into the existing (float32) parameters.
    twin = torchaudio.models.emformer_rnnt_model(**asdict(model.config)).to(dtype=param.dtype, device=param.device)
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin.train(model.training)


def from_torchaudio(ta_model: torch.nn.Module, **config) -> RNNT:
    """An emformer_edu ``RNNT`` built from factory ``config`` holding ``ta_model``'s weights."""
    param = next(ta_model.parameters())
    model = emformer_rnnt_model(**config).to(dtype=param.dtype, device=param.device)
    model.load_state_dict(ta_model.state_dict(), strict=True)
    return model.train(ta_model.training)
