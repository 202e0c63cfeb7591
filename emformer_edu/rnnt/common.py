"""What greedy and beam search share: input checks and the start context (blank fed to the predictor).

Both decoders talk to the model only through torchaudio's RNN-T interface (``transcribe``,
``transcribe_streaming``, ``predict``, ``join``), so they work with torchaudio's models too.

Notation: B batch, T frames, U target length, V vocabulary (incl. blank), D model dim.
"""
from typing import List, Tuple

import torch

PredictorState = List[List[torch.Tensor]]


def _check_blank(blank: int, num_symbols: int) -> None:
    if not 0 <= blank < num_symbols:
        raise ValueError(f"blank={blank} is out of range for a joiner with V={num_symbols} outputs")


def _predict_blank(model, batch_size: int, blank: int, device: torch.device):
    """Feed the blank to the predictor (the start context): (B, 1, D) output and state."""
    tokens = torch.full((batch_size, 1), blank, dtype=torch.long, device=device)
    try:
        pred_out, _, pred_state = model.predict(tokens, torch.ones(batch_size, dtype=torch.long, device=device), None)
    except IndexError as e:  # embedding lookup out of range
        raise ValueError(f"blank={blank} is not a valid token id for model.predict") from e
    return pred_out, pred_state


def _check_single_utterance(input: torch.Tensor, length: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(T, D) or (1, T, D) input and () or (1,) length -> (1, T, D), (1,)."""
    if input.dim() != 2 and not (input.dim() == 3 and input.shape[0] == 1):
        raise ValueError(f"input must be of shape (T, D) or (1, T, D), got {tuple(input.shape)}")
    if input.dim() == 2:
        input = input.unsqueeze(0)
    if length.shape != () and length.shape != (1,):
        raise ValueError(f"length must be of shape () or (1,), got {tuple(length.shape)}")
    return input, length.reshape(1)


def _check_batch(input: torch.Tensor, lengths: torch.Tensor) -> None:
    if input.dim() != 3:
        raise ValueError(f"input must be of shape (B, T, D), got {tuple(input.shape)}")
    if lengths.shape != (input.shape[0],):
        raise ValueError(f"lengths must be of shape (B,) = ({input.shape[0]},), got {tuple(lengths.shape)}")


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
