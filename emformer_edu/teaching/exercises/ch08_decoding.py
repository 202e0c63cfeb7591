"""Notebook 08 (decoding): a token's time, the streaming chunk that emits it, how many hypotheses beam search returns.

Times come from the library's timestamp conversion, the chunk from the encoder frames the shipped
model produces chunk by chunk, and the hypotheses from torchaudio's own beam search on that model.
"""
import torch
import torchaudio

from ... import rnnt
from ...transducer import torchaudio_twin
from ._shared import Exercise, toy


def _seconds():
    # Encoder frame 7, stride 4, the default 10 ms hop.
    return rnnt.token_timestamps([0], [7], 4)[0].seconds


def _chunk(encoder_frame: int = 9) -> int:
    # The toy model has segment_length 16 input frames and stride 4; count the frames each chunk encodes.
    model = toy()
    features = torch.zeros(4 * model.segment_length + model.right_context_length, 80)
    state, frames_before = None, 0
    for index, (chunk, length) in enumerate(model.chunks(features)):
        _, encoded, state = model.model.transcribe_streaming(chunk, length, state)
        if frames_before <= encoder_frame < frames_before + int(encoded[0]):
            return index
        frames_before += int(encoded[0])
    raise ValueError(f"encoder frame {encoder_frame} is beyond the features")


def _num_hypotheses(beam_width: int = 3) -> int:
    # torchaudio's RNNTBeamSearch on the toy model's torchaudio twin: the interface emformer_edu copies.
    model = toy()
    features = model.features(model.held_out(1)[0].waveform)
    searcher = torchaudio.models.RNNTBeamSearch(torchaudio_twin(model.model).eval(), model.blank)
    return len(searcher(features, torch.tensor([features.size(0)]), beam_width))


EXERCISES = {
    "08.seconds": Exercise("time in s of a token emitted at encoder frame 7, stride 4, 10 ms hop", _seconds),
    "08.chunk": Exercise("streaming chunk (from 0) emitting at encoder frame 9, segment 16, stride 4", _chunk),
    "08.num_hypotheses": Exercise("hypotheses RNNTBeamSearch.forward returns with beam_width=3", _num_hypotheses),
}
