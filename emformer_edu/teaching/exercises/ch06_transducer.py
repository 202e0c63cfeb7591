"""Notebook 06 (transducer): write time reduction, write the joiner, the joint output's shape, the predictor state.

The two coding exercises compare the learner's function with the library's own modules
(:class:`~emformer_edu.transducer.time_reduction.TimeReduction` and
:class:`~emformer_edu.transducer.joiner.Joiner`, both torchaudio-compatible) on the same random
inputs. The shipped spoken model gives the joint output's shape; the predictor state is
torchaudio's own, for the base model's predictor settings.
"""
from dataclasses import asdict

import torch
import torchaudio

from ...config import EmformerRNNTConfig
from ...transducer.joiner import Joiner
from ...transducer.time_reduction import TimeReduction
from ._shared import Exercise, spoken


# ----------------------------------------------------------------------------- 06.time_reduction (coding)
def _time_reduction(x: torch.Tensor, stride: int) -> torch.Tensor:
    """The library's time reduction of ``x (B, T, D)``: ``(B, T // stride, D * stride)``."""
    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    return TimeReduction(stride)(x, lengths)[0]


def _time_reduction_cases():
    # First a readable case (x[b, t, d] = 10 t + d), then frames that do not fill the last group.
    readable = (10 * torch.arange(6.0).view(1, 6, 1) + torch.arange(2.0).view(1, 1, 2))
    return [dict(x=readable, stride=2),
            dict(x=torch.randn(2, 10, 3), stride=4),   # 2 trailing frames dropped
            dict(x=torch.randn(1, 7, 5), stride=3),    # 1 dropped
            dict(x=torch.randn(3, 12, 4), stride=1)]   # stride 1: unchanged


# ----------------------------------------------------------------------------- 06.joiner (coding)
def _joiner(f: torch.Tensor, g: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The library's Joiner with these Linear weights: ``f (B, T, D)``, ``g (B, U+1, D)`` -> ``(B, T, U+1, V)``."""
    V, D = weight.shape
    joiner = Joiner(D, V, activation="relu")
    with torch.no_grad():
        joiner.linear.weight.copy_(weight)
        joiner.linear.bias.copy_(bias)
    B, T, U1 = f.shape[0], f.shape[1], g.shape[1]
    logits, _, _ = joiner(f, torch.full((B,), T), g, torch.full((B,), U1))
    return logits


def _joiner_cases():
    cases = []
    for B, T, U1, D, V in ((1, 2, 3, 4, 5), (2, 6, 4, 8, 7), (3, 5, 1, 6, 29)):
        cases.append(dict(f=torch.randn(B, T, D), g=torch.randn(B, U1, D),
                          weight=torch.randn(V, D) / D ** 0.5, bias=torch.randn(V)))
    return cases


# ----------------------------------------------------------------------------- value exercises
def _joint_shape():
    # The spoken model: two utterances of 200 and 150 frames padded to 200 + R; targets "cat" and
    # "red cup" (its space is a token too) behind a blank.
    shipped = spoken()
    model, vocab = shipped.model, shipped.vocab
    encodings, lengths = model.transcribe(torch.zeros(2, 200 + 4, 80), torch.tensor([200, 150]))
    inputs = [torch.tensor([vocab.blank] + vocab.encode(text)) for text in ("cat", "red cup")]
    tokens = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True)
    predicted, predicted_lengths, _ = model.predict(tokens, torch.tensor([len(t) for t in inputs]), None)
    return tuple(model.join(encodings, lengths, predicted, predicted_lengths)[0].shape)


def _predictor_state_numbers():
    # torchaudio's predictor with emformer_rnnt_base's settings; one transcriber layer is enough
    # because the transcriber plays no part in the predictor state.
    cfg = EmformerRNNTConfig.base().replace(transformer_num_layers=1)
    reference = torchaudio.models.emformer_rnnt_model(**asdict(cfg)).eval()
    _, _, state = reference.predict(torch.tensor([[cfg.blank]]), torch.tensor([1]), None)
    return sum(x.numel() for layer in state for x in layer)


EXERCISES = {
    "06.time_reduction": Exercise("write time reduction: x (B, T, D), stride -> (B, T // stride, D * stride)",
                                  _time_reduction, _time_reduction_cases),
    "06.joiner": Exercise("write the joiner: f (B, T, D), g (B, U+1, D), Linear weight (V, D), bias (V,) "
                          "-> logits (B, T, U+1, V)", _joiner, _joiner_cases),
    "06.joint_shape": Exercise("joint output shape of the spoken model: frames 200 and 150 (+R=4), targets cat, red cup",
                               _joint_shape),
    "06.predictor_state_numbers": Exercise("numbers in emformer_rnnt_base's predictor state for B=1",
                                           _predictor_state_numbers),
}
