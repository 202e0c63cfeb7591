"""Teaching ablations of the Emformer: what the right-context *hard copies* buy (notebook 05).

Emformer gives every segment its look-ahead as a hard copy: the R frames after segment i are copied
into a right-context block ``rc_i`` that travels through every layer beside the segment, and the
segment's queries read ``rc_i``, never the next segment's frames (Shi et al. 2021, arXiv:2010.10759,
sections 2-3; torchaudio ``torchaudio/models/emformer.py``). This module builds the design the copies
replace, on the *same* trained weights, and measures what it costs:

* :func:`next_segment_mask`: the library's training mask, rewired so that the queries of segment i
  read the first R frames of segment i + 1 *of the same layer* instead of ``rc_i`` (the last segment,
  which has no next segment, keeps its block of the utterance's trailing R frames);
* :func:`encode`: a full-context pass of a trained :class:`~emformer_edu.transducer.RNNT`'s encoder with
  either mask, built from the library's own layers (``EmformerLayer.forward``) — with the library's
  mask it reproduces ``model.transcribe`` bit for bit (``tests/test_ch05_ablations.py``);
* :func:`prefix_encodings`: what a streaming recogniser could compute: segment i encoded from only the
  input that has arrived when segment i and ``wait`` more encoder frames are in;
* :func:`reachability` / :func:`look_ahead`: which input frames each output frame can depend on, layer by
  layer, propagated through the per-layer attention mask (not written down from a formula).

The model code under ``emformer_edu/encoder`` is untouched: everything here calls its public pieces.

Notation: T utterance frames (encoder frames, after time reduction), R right context, S segment length
(encoder frames), N segments, M memory slots, F feature bins, D model dim.
"""
from typing import List, Optional

import torch

from ..encoder.masks import AttentionMask, training_mask
from ..encoder.memory_bank import empty_memory, summarize_segments
from ..encoder.segments import segment_spans, split_utterance_and_right_context

__all__ = ["next_segment_mask", "encode", "prefix_encodings", "reachability", "look_ahead"]

MODES = ("hard copies", "next segment")


def next_segment_mask(mask: AttentionMask, segment_length: int, right_context_length: int) -> AttentionMask:
    """The training mask without hard copies: segment i's queries read segment i + 1's first R frames.

    ``mask`` is a training-mode :class:`AttentionMask` (:func:`~emformer_edu.encoder.masks.training_mask`).
    For every utterance and summary query of segment i < N - 1 the right-context block ``rc_i`` is
    blocked and the utterance keys ``[end_i, end_i + R)`` (the next segment's first R frames, clipped
    to the utterance) are allowed. The right-context queries and the last segment are left as they
    were: the last segment has no next segment in the utterance, so it still reads the trailing R
    frames. Returns a new mask with the same labelled blocks.
    """
    S, R = segment_length, right_context_length
    allowed = mask.allowed.clone()
    utt_cols = [b for b in mask.cols if b.kind == "utterance"]
    rc_cols = {b.segment: b for b in mask.cols if b.kind == "right_context"}
    first_utt, T = utt_cols[0].start, sum(len(b) for b in utt_cols)
    N = len(rc_cols)
    for block in mask.rows:
        if block.kind not in ("utterance", "summary") or block.segment >= N - 1:
            continue
        i = block.segment
        end = min((i + 1) * S, T)
        rows = slice(block.start, block.stop)
        allowed[rows, rc_cols[i].start:rc_cols[i].stop] = False
        allowed[rows, first_utt + end:first_utt + min(end + R, T)] = True
    return AttentionMask(~allowed, list(mask.rows), list(mask.cols))


def _mask(mode: str, T: int, emformer) -> AttentionMask:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    mask = training_mask(T, emformer.segment_length, emformer.right_context_length,
                         emformer.left_context_length, emformer.max_memory_size)
    if mode == "next segment":
        mask = next_segment_mask(mask, emformer.segment_length, emformer.right_context_length)
    return mask


@torch.no_grad()
def encode(model, features: torch.Tensor, mode: str = "next segment") -> torch.Tensor:
    """Full-context encodings of one utterance by ``model`` (an RNN-T), with hard copies or without.

    ``features``: ``(T_in + R_in, F)`` (input frames, right padding included) for one utterance.
    ``mode``: ``"hard copies"`` (the library's mask: the same numbers as ``model.transcribe``) or
    ``"next segment"`` (:func:`next_segment_mask`). Returns ``(T, D)`` encoder outputs.

    The steps are ``EmformerEncoder.forward`` and ``Emformer.forward`` with the mask swapped:
    input linear, time reduction, split off the right-context blocks, layer-0 memory (segment
    averages), every layer's own ``forward``, output linear and layer norm.
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (T + R, F) for one utterance, got {tuple(features.shape)}.")
    enc = model.transcriber
    emformer = enc.transformer
    x, lengths = enc.time_reduction(enc.input_linear(features.unsqueeze(0)), torch.tensor([features.size(0)]))
    utterance, right_context = split_utterance_and_right_context(
        x.permute(1, 0, 2), emformer.segment_length, emformer.right_context_length)
    mask = _mask(mode, utterance.size(0), emformer)
    memory = (summarize_segments(utterance, emformer.segment_length)[:-1] if emformer.use_mem
              else empty_memory(utterance))
    output = utterance
    for layer in emformer.emformer_layers:
        output, right_context, memory = layer(output, lengths, right_context, memory, mask)
    return enc.layer_norm(enc.output_linear(output.permute(1, 0, 2)))[0]


@torch.no_grad()
def prefix_encodings(model, features: torch.Tensor, mode: str = "next segment", wait: Optional[int] = None,
                     segments: Optional[List[int]] = None) -> torch.Tensor:
    """What a streaming recogniser can compute: each segment encoded from the input arrived so far.

    For segment i, the input available is the utterance up to ``wait`` encoder frames after the
    segment's end (default ``wait = R``: the look-ahead a streaming chunk carries); :func:`encode`
    runs on that prefix (its last R frames serving as the last segment's right context) and segment
    i's outputs are kept. ``features``: ``(T_in + R_in, F)`` as for :func:`encode`, whole segments of
    real frames. ``segments``: which segments to compute (default all). Returns ``(len(segments) * S, D)``.

    With hard copies this equals the full-context pass (streaming equals full context); without them
    it does not, until ``wait`` covers the whole receptive field (:func:`look_ahead`).
    """
    stride = model.transcriber.time_reduction.stride
    emformer = model.transcriber.transformer
    S, R = emformer.segment_length, emformer.right_context_length
    wait = R if wait is None else wait
    if wait < R:
        raise ValueError(f"wait must be at least R = {R} encoder frames (the chunk's own look-ahead), got {wait}.")
    T = (features.size(0) // stride) - R
    if segments is None:
        segments = list(range(-(-T // S)))
    outs = []
    for i in segments:
        end = min((i + 1) * S, T)
        have = min(end + wait, T + R) * stride  # input frames arrived when segment i + wait frames are in
        out = encode(model, features[:have], mode)
        outs.append(out[i * S:end])
    return torch.cat(outs)


def reachability(mask: AttentionMask, num_layers: int, segment_length: int,
                 right_context_length: int) -> List[torch.Tensor]:
    """Which input frames each utterance frame can depend on, after each layer: ``num_layers + 1`` tensors
    ``(T, T + R)`` of bool (entry 0 is the input: each frame itself).

    The same ``mask`` (``(Q, K)``, training layout: rows ``[rc | utterance | summary]``, columns
    ``[memory | rc | utterance]``) is applied in every layer, as in ``Emformer.forward``. A query row
    depends on itself (its residual and its query) and on every key it may attend to; a summary
    query is the average of its segment's frames, and its output becomes the next layer's memory slot.
    Input frame ``T + k`` is the k-th trailing right-context frame.
    """
    T = sum(len(b) for b in mask.rows if b.kind == "utterance")
    S, R = segment_length, right_context_length
    spans = segment_spans(T, S, R)
    F = T + R
    eye = torch.eye(F, dtype=torch.bool)
    utt = eye[:T].clone()                                                              # (T, F)
    rc = torch.stack([eye[t] for s in spans for t in range(*s.right_context)]) if R else eye[:0]  # (N*R, F)
    seg = torch.stack([eye[s.segment[0]:s.segment[1]].any(0) for s in spans])          # (N, F)
    n_mem = sum(1 for b in mask.cols if b.kind == "memory")
    mem = seg[:n_mem].clone()  # layer 0's memory: plain segment averages
    has_summary = any(b.kind == "summary" for b in mask.rows)  # memory on: one summary query per segment
    allowed = mask.allowed.float()
    out = [utt.clone()]
    for _ in range(num_layers):
        keys = torch.cat([mem, rc, utt]).float()                                       # (K, F)
        deps = (allowed @ keys) > 0                                                    # (Q, F)
        # Residual / query: a row also depends on its own input (a summary query on its segment's frames).
        deps = deps | torch.cat([rc, utt, seg if has_summary else seg[:0]])
        rc, utt = deps[: len(rc)], deps[len(rc): len(rc) + T]
        if n_mem:
            summary = deps[len(rc) + T:]
            mem = summary[:n_mem]
        seg = torch.stack([utt[s.segment[0]:s.segment[1]].any(0) for s in spans])
        out.append(utt.clone())
    return out


def look_ahead(reach: torch.Tensor, segment_length: int) -> int:
    """The look-ahead of one layer's output, in encoder frames: the furthest input frame any output frame
    can depend on, counted from the last frame of that frame's segment (``reach``: ``(T, T + R)`` bool)."""
    T = reach.size(0)
    furthest = torch.arange(reach.size(1)).masked_fill(~reach, -1).amax(1)                 # (T,)
    segment_end = torch.clamp((torch.arange(T) // segment_length + 1) * segment_length, max=T) - 1
    return int((furthest - segment_end).max())
