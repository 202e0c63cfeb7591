"""Notebook 01 (features and chunks): three coding exercises, each checked against the library.

* ``01.num_frames``: how many feature frames N samples give, compared with what the library's
  :class:`~emformer_edu.data.features.FeatureExtractor` really returns for N samples;
* ``01.chunks``: cut a feature matrix into streaming chunks, compared with
  :func:`~emformer_edu.transducer.streaming.streaming_chunks`, the one chunker the course uses;
* ``01.frame_latency``: how long frame t waits before its chunk can be encoded, read off the chunks
  ``streaming_chunks`` makes from frames that hold their own index (so a chunk shows what it waited for).
"""
import functools

import torch

from ...data import FeatureExtractor
from ...transducer import streaming_chunks
from ._shared import Exercise


# ----------------------------------------------------------------------------- 01.num_frames
@functools.lru_cache(maxsize=None)
def _extractor() -> FeatureExtractor:
    return FeatureExtractor()


def _feature_frames(num_samples: int) -> int:
    # The real pipeline on num_samples samples of silence: count the log-mel frames it returns.
    return int(_extractor().log_mel(torch.zeros(num_samples)).shape[0])


def _num_frames_cases():
    # The shortest audio the centred STFT accepts (201 samples), both sides of a hop and of a window, 1 s;
    # then random lengths up to 3 s.
    fixed = [201, 399, 400, 559, 560, 16000, 16159, 16160]
    drawn = torch.randint(201, 48000, (6,)).tolist()
    return [dict(num_samples=n) for n in fixed + drawn]


# ----------------------------------------------------------------------------- 01.chunks
def _chunked(features: torch.Tensor, segment_length: int, right_context_length: int):
    # streaming_chunks gives [(chunk (1, C + R, F), length (1,)), ...]; the exercise asks for the chunks, stacked.
    return torch.cat([chunk for chunk, _ in streaming_chunks(features, segment_length, right_context_length)])


def _chunks_cases():
    # (T, C, R): T a multiple of C (where counting the R padding frames as utterance adds a chunk),
    # T not a multiple of C, no look-ahead at all, a single short chunk; then random ones.
    fixed = [(8, 4, 2), (10, 4, 2), (9, 4, 0), (3, 4, 1), (16, 16, 4)]
    drawn = [(int(torch.randint(1, 60, ())), int(torch.randint(1, 17, ())), int(torch.randint(0, 6, ())))
             for _ in range(6)]
    return [dict(features=torch.randn(T + R, 3), segment_length=C, right_context_length=R)
            for T, C, R in fixed + drawn]


# ----------------------------------------------------------------------------- 01.frame_latency
def _frame_wait_ms(t: int, segment_length: int, right_context_length: int, frame_ms: float) -> float:
    # A stream that goes on past frame t: at least one more segment after the one holding t.
    T = (t // segment_length + 2) * segment_length
    frames = torch.arange(T + right_context_length, dtype=torch.float64).unsqueeze(1)  # frame i holds i
    for chunk, length in streaming_chunks(frames, segment_length, right_context_length):
        held = chunk[0, : int(length[0]), 0]
        if int(held[0]) <= t < int(held[0]) + segment_length:  # the chunk whose segment holds frame t
            # It can be encoded once its last frame (the end of its look-ahead) has arrived.
            return float(held[-1] - t) * frame_ms
    raise AssertionError("unreachable: every frame of the stream is in some segment")


def _frame_latency_cases():
    fixed = [(0, 4, 1, 10.0), (3, 4, 1, 10.0), (4, 4, 1, 10.0), (5, 4, 0, 10.0), (0, 16, 4, 10.0), (15, 16, 4, 10.0)]
    drawn = [(int(torch.randint(0, 200, ())), int(torch.randint(1, 33, ())), int(torch.randint(0, 9, ())),
              float(torch.randint(1, 5, ())) * 10.0) for _ in range(6)]
    return [dict(t=t, segment_length=C, right_context_length=R, frame_ms=ms) for t, C, R, ms in fixed + drawn]


EXERCISES = {
    "01.num_frames": Exercise("write num_frames(num_samples): feature frames the pipeline gives for that many "
                              "16 kHz samples (centred 400-sample windows every 160 samples)",
                              _feature_frames, _num_frames_cases),
    "01.chunks": Exercise("write chunk(features, segment_length, right_context_length) -> (N, C + R, F): the "
                          "streaming chunks of one utterance's (T + R, F) features, the last one zero-padded",
                          _chunked, _chunks_cases),
    "01.frame_latency": Exercise("write frame_latency_ms(t, segment_length, right_context_length, frame_ms): how long "
                                 "after frame t has arrived its chunk can be encoded",
                                 _frame_wait_ms, _frame_latency_cases),
}
