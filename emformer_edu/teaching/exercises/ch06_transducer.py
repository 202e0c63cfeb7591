"""Notebook 06 (transducer): encoder frames after time reduction, the joint output's shape, the predictor state.

The shipped models encode, predict and join step by step (the notebook runs the spoken one in one
forward call); the predictor state is torchaudio's own, for the base model's predictor settings.
"""
from dataclasses import asdict

import torch
import torchaudio

from ...config import EmformerRNNTConfig
from ._shared import Exercise, spoken, toy


def _reduced_length():
    # Encoder frames the toy model (stride 4) produces for 123 frames plus its right context.
    model = toy()
    features = torch.zeros(1, 123 + model.right_context_length, 80)
    encodings, _ = model.model.transcribe(features, torch.tensor([123]))
    return encodings.shape[1]


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
    "06.reduced_length": Exercise("encoder frames left from 123 input frames by time reduction with stride 4",
                                  _reduced_length),
    "06.joint_shape": Exercise("joint output shape of the spoken model: frames 200 and 150 (+R=4), targets cat, red cup",
                               _joint_shape),
    "06.predictor_state_numbers": Exercise("numbers in emformer_rnnt_base's predictor state for B=1",
                                           _predictor_state_numbers),
}
