"""From features to tokens: decode one utterance chunk by chunk, or a padded batch, greedy or by beam search.

Streaming decoding runs ``model.transcribe_streaming`` on the chunks of
:func:`~emformer_edu.transducer.streaming.streaming_chunks` and continues the search
frame-synchronously from the previous chunk's result, as a live recognizer would.

Notation: B batch, T frames, F mel bins, R right context.
"""
from typing import List, Optional, Tuple

import torch

from ..checks import check_finite
from ..transducer.streaming import streaming_chunks
from .beam_search import RNNTBeamSearch
from .greedy import greedy_decode, greedy_search


@torch.no_grad()
def decode_streaming(
    model, features: torch.Tensor, blank: int, beam_width: Optional[int] = None, beam_search: Optional[RNNTBeamSearch] = None
) -> Tuple[List[int], List[int]]:
    """Decode one utterance chunk by chunk, as a live recognizer would.

    Each chunk goes through ``model.transcribe_streaming`` (carrying the Emformer state) and
    the search continues frame-synchronously from the previous chunk's result: greedy
    (:func:`~emformer_edu.decoding.greedy_search`) when ``beam_width`` is ``None``, else beam
    search (:meth:`RNNTBeamSearch.search`, i.e. ``RNNTBeamSearch.infer`` split in its two steps
    so that the last chunk's zero-padded encoder frames are dropped before searching).

    Args:
        features: ``(T + R, F)`` for one utterance (R zero frames at the end).
        blank: blank index. beam_width: ``None`` for greedy, else the beam size.
        beam_search: reuse this searcher (its model must be ``model``).
    Returns:
        ``(tokens, timesteps)``: emitted token ids and the encoder frame of each.
    """
    check_finite(features, "features")  # before the encoder: NaN would decode to confident garbage
    transcriber = model.transcriber
    chunks = streaming_chunks(features, transcriber.segment_length, transcriber.right_context_length)
    state, greedy, hyps = None, None, None
    if beam_width is not None and beam_search is None:
        beam_search = RNNTBeamSearch(model, blank)
    for chunk, length in chunks:
        enc, enc_len, state = model.transcribe_streaming(chunk, length, state)
        if beam_width is None:
            greedy = greedy_search(model, enc, enc_len, blank, state=greedy)
        else:
            hyps = beam_search.search(enc[:, : int(enc_len[0])], beam_width, hyps)
    if beam_width is None:
        return greedy.tokens[0], greedy.timesteps[0]
    best = hyps[0]
    # Drop the blank that seeded the predictor (timestep -1).
    return list(best.tokens[1:]), list(best.timesteps[1:])


@torch.no_grad()
def decode(
    model, features: torch.Tensor, lengths: torch.Tensor, blank: int,
    beam_width: Optional[int] = None, streaming: bool = False,
) -> Tuple[List[List[int]], List[List[int]]]:
    """Decode a padded batch ``features (B, T_max + R, F)``, ``lengths (B,)`` (real frames).

    Full-context greedy decoding is batched; beam search and streaming go one utterance at
    a time (each utterance cut to its own ``T_b + R`` frames). Returns per-utterance
    ``(tokens, timesteps)`` lists (token ids without blanks, encoder frame of each).
    """
    check_finite(features, "features")
    if not streaming and beam_width is None:
        return greedy_decode(model, features, lengths, blank)
    R = model.transcriber.right_context_length
    searcher = RNNTBeamSearch(model, blank) if beam_width is not None else None
    tokens, timesteps = [], []
    for b in range(features.size(0)):
        x = features[b, : int(lengths[b]) + R]
        if streaming:
            tok, ts = decode_streaming(model, x, blank, beam_width, searcher)
        else:
            best = searcher(x, torch.tensor(int(lengths[b])), beam_width)[0]
            tok, ts = list(best.tokens[1:]), list(best.timesteps[1:])
        tokens.append(tok)
        timesteps.append(ts)
    return tokens, timesteps
