"""Emformer attention masks, built block by block and labelled for plotting.

Attention with a mask: ``softmax(Q K^T / sqrt(d) + A) V`` where ``A[q, k] = 0`` if query q may
attend to key k and ``-inf`` if not (the code fills ``negative_inf = -1e8``, torchaudio's value,
and the softmax then gives those keys probability exactly 0).

**Training mode** (``Emformer.forward``, :func:`training_mask`): all N segments are processed in
one pass, so one big mask says who may attend to whom. Its layout:

* query rows:  ``[rc_0 .. rc_{N-1} | seg_0 .. seg_{N-1} | s_0 .. s_{N-1}]`` (right-context
  copies, utterance frames, one summary query per segment when memory is on);
* key columns: ``[m_0 .. m_{N-2} | rc_0 .. rc_{N-1} | utterance frames 0 .. T-1]``.

There is no separate left-context block in training: a segment's left context is simply the
``L`` utterance columns before it. A query of segment i (a row of ``rc_i`` or ``seg_i``) may
see memory slots ``[max(i - M, 0), i)``, its own right-context block ``rc_i``, and utterance
frames ``[max(i*segment_length - L, 0), min((i+1)*segment_length, T))``. The summary query
``s_i`` sees the same except memory.

**Inference mode** (``Emformer.infer``, :func:`inference_mask`): one chunk at a time. Rows
``[rc_i | seg_i | s_i]``, keys ``[memory (<= M) | rc_i | left context (<= L, cached) | seg_i]``.
The keys hold only what the chunk may see, so the mask only blocks summary -> memory.

Why the summary query does not read memory: torchaudio's code (``torchaudio/models/emformer.py``,
``_gen_attention_mask``) gives no reason; its comment only names the blocks the summary sees,
``# right context, query segment``. fairseq's Emformer (``fairseq/models/speech_to_text/modules/
emformer.py``, ``_get_attention_mask``) records it as an empirical choice: "disable summary query
attention on memeory [sic] is better for long form utterance". It is *not* forced by causality: memory
at layer n comes from layer n-1, so the summary could read it without any circular dependency.
What the choice implies: the memory slot ``m_i`` made at layer n is a function of segment i's
layer-n inputs only (its frames, left context and right-context copy); older memory reaches it
only through those frames' own processing in the layers below, never directly.

Convention (torchaudio's): ``True`` means *blocked*. ``AttentionMask.allowed`` is the
complement, which is what the pictures show.
"""
import functools
from dataclasses import dataclass, replace
from typing import List, Optional

import torch

from .segments import segment_spans


@dataclass(frozen=True)
class Block:
    """A contiguous run of rows or columns of the mask: ``kind`` of ``segment``, ``[start, stop)``."""

    kind: str  # "memory", "right_context", "left_context", "utterance" or "summary"
    segment: int
    start: int
    stop: int
    frame0: int = 0  # utterance frame of the block's first row/column (utterance and left context)

    @property
    def label(self) -> str:
        short = {"memory": "m", "right_context": "rc", "left_context": "lc", "utterance": "seg", "summary": "s"}
        return f"{short[self.kind]}{self.segment}" if self.segment >= 0 else short[self.kind]

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class AttentionMask:
    """A ``(Q, K)`` boolean mask (``True`` = blocked) with labelled row and column blocks."""

    blocked: torch.Tensor
    rows: List[Block]
    cols: List[Block]

    @property
    def allowed(self) -> torch.Tensor:
        return ~self.blocked

    @property
    def shape(self):
        return tuple(self.blocked.shape)

    def only_rows(self, kind: str) -> "AttentionMask":
        """The mask for the query rows of one kind (e.g. ``"utterance"``), renumbered from 0.

        The rows of a kind are contiguous in both layouts (right context, utterance, summary).
        """
        keep = [b for b in self.rows if b.kind == kind]
        start, stop = keep[0].start, keep[-1].stop
        rows = [replace(b, start=b.start - start, stop=b.stop - start) for b in keep]
        return AttentionMask(self.blocked[start:stop], rows, self.cols)

    def first_row(self, kind: str, segment: int) -> int:
        """Row index of the first query of ``kind`` ("right_context", "utterance", "summary") of ``segment``.

        All rows of one block see the same keys, so ``allowed[first_row(kind, i)]`` is *the* key row
        of that block. ``ValueError`` when the mask has no such (non-empty) block.
        """
        for b in self.rows:
            if b.kind == kind and b.segment == segment and len(b):
                return b.start
        raise ValueError(f"no {kind!r} rows for segment {segment} in this mask")

    def row_labels(self) -> List[str]:
        """One label per row, e.g. ``['rc0', 'rc0', 'seg0', ...]``."""
        return [b.label for b in self.rows for _ in range(len(b))]

    def col_labels(self) -> List[str]:
        return [b.label for b in self.cols for _ in range(len(b))]

    def key_names(self, col: int) -> str:
        """A position-independent name for key column ``col``: ``m<j>``, ``rc<i>.<k>`` or ``frame <t>``.

        Training and inference masks lay keys out differently; these names let you compare
        *which* keys a query sees in each (see :meth:`visible_keys`).
        """
        for b in self.cols:
            if b.start <= col < b.stop:
                if b.kind == "memory":
                    return f"m{b.segment}"
                if b.kind == "right_context":
                    return f"rc{b.segment}.{col - b.start}"
                return f"frame {b.frame0 + col - b.start}"
        raise IndexError(f"column {col} is outside the mask's {self.shape[1]} columns")

    def visible_keys(self, row: int) -> List[str]:
        """Names of the keys query ``row`` may attend to."""
        return [self.key_names(int(c)) for c in self.allowed[row].nonzero().flatten()]

    def describe(self) -> str:
        """A short text layout: block labels with their sizes, rows then columns."""
        fmt = lambda blocks: " ".join(f"{b.label}[{len(b)}]" for b in blocks if len(b))
        return f"query rows  ({self.shape[0]}): {fmt(self.rows)}\nkey columns ({self.shape[1]}): {fmt(self.cols)}"


def _blocks(kind: str, sizes: List[int], offset: int = 0, segment_ids: Optional[List[int]] = None) -> List[Block]:
    out, start, frame = [], offset, 0
    for i, size in enumerate(sizes):
        out.append(Block(kind, i if segment_ids is None else segment_ids[i], start, start + size, frame))
        start += size
        frame += size  # only meaningful for utterance blocks, which tile the utterance
    return out


def training_mask(
    utterance_length: int,
    segment_length: int,
    right_context_length: int,
    left_context_length: int = 0,
    max_memory_size: int = 0,
    device: Optional[torch.device] = None,
) -> AttentionMask:
    """The mask ``Emformer.forward`` uses, for an utterance of T frames (right context excluded).

    Returns an :class:`AttentionMask` of shape ``(N*R + T + S, M_all + N*R + T)`` where
    ``N = ceil(T / segment_length)``, ``S = N`` summary rows and ``M_all = N - 1`` memory
    columns when memory is on (``max_memory_size > 0``), and ``S = M_all = 0`` otherwise.
    """
    T, R, L, M = utterance_length, right_context_length, left_context_length, max_memory_size
    spans = segment_spans(T, segment_length, R, L)
    N, use_mem = len(spans), M > 0
    seg_sizes = [s.segment[1] - s.segment[0] for s in spans]

    # Rows: all right-context blocks, then all segments, then one summary per segment.
    rows = _blocks("right_context", [R] * N) + _blocks("utterance", seg_sizes, N * R)
    if use_mem:
        rows += _blocks("summary", [1] * N, N * R + T)
    # Columns: memory slots (the last segment's summary never becomes memory), rc blocks, utterance.
    n_mem = N - 1 if use_mem else 0
    cols = _blocks("memory", [1] * n_mem) + _blocks("right_context", [R] * N, n_mem)
    cols += _blocks("utterance", seg_sizes, n_mem + N * R)

    allowed = torch.zeros(rows[-1].stop if rows else 0, cols[-1].stop if cols else 0, dtype=torch.bool, device=device)
    rc_rows, seg_rows, sum_rows = rows[:N], rows[N:2 * N], rows[2 * N:]
    for i, span in enumerate(spans):
        rc_cols = slice(n_mem + i * R, n_mem + (i + 1) * R)
        # Left context and own segment: utterance frames [segment start - L, segment end).
        utt_cols = slice(n_mem + N * R + span.left_context[0], n_mem + N * R + span.segment[1])
        mem_cols = slice(max(i - M, 0), i)
        for block in (rc_rows[i], seg_rows[i]):
            rs = slice(block.start, block.stop)
            allowed[rs, rc_cols] = True
            allowed[rs, utt_cols] = True
            if use_mem:
                allowed[rs, mem_cols] = True
        if use_mem:
            # The summary query s_i: own right context and utterance frames, never the memory bank
            # (torchaudio's and the Emformer authors' design; an empirical choice, see the module docstring).
            rs = slice(sum_rows[i].start, sum_rows[i].stop)
            allowed[rs, rc_cols] = True
            allowed[rs, utt_cols] = True
    return AttentionMask(~allowed, rows, cols)


@functools.lru_cache(maxsize=32)
def cached_training_mask(
    utterance_length: int, segment_length: int, right_context_length: int, left_context_length: int,
    max_memory_size: int, device: Optional[torch.device] = None,
) -> AttentionMask:
    """:func:`training_mask`, built once per set of arguments and then reused (read it, never write to it).

    ``Emformer.forward`` needs the same mask for every batch of the same length; building it block by
    block in Python costs about half a millisecond, more than some of the layers' tensor operations.
    """
    return training_mask(utterance_length, segment_length, right_context_length, left_context_length,
                         max_memory_size, device)


def inference_mask(
    segment_length: int,
    right_context_length: int,
    num_memory: int,
    num_left_context: int,
    use_memory: bool,
    segment_index: int = 0,
    device: Optional[torch.device] = None,
) -> AttentionMask:
    """The mask ``Emformer.infer`` uses for one chunk.

    Rows ``[rc (R) | segment | summary (1 if memory)]``, columns
    ``[memory (num_memory) | rc (R) | left context (num_left_context) | segment]``. The keys
    already hold only what this chunk may see, so everything is allowed except summary to
    memory, the same rule as in :func:`training_mask`.
    """
    i, R = segment_index, right_context_length
    rows = [Block("right_context", i, 0, R), Block("utterance", i, R, R + segment_length)]
    if use_memory:
        rows.append(Block("summary", i, R + segment_length, R + segment_length + 1))
    cols = _blocks("memory", [1] * num_memory, 0, list(range(i - num_memory, i)))
    k = num_memory
    first = i * segment_length
    cols += [Block("right_context", i, k, k + R),
             Block("left_context", i, k + R, k + R + num_left_context, first - num_left_context)]
    k += R + num_left_context
    cols.append(Block("utterance", i, k, k + segment_length, first))
    blocked = torch.zeros(rows[-1].stop, cols[-1].stop, dtype=torch.bool, device=device)
    if use_memory:
        blocked[-1, :num_memory] = True
    return AttentionMask(blocked, rows, cols)


def key_padding_mask(lengths: torch.Tensor, num_keys: int) -> Optional[torch.Tensor]:
    """``(B, K)`` mask of padded keys for a batch, ``None`` when B == 1.

    Keys end with the utterance frames in both modes (training: ``[memory | right context |
    utterance]``; inference: ``[memory | right context | left context | segment]``) and only
    the utterance is padded, at its end, so for element b the last ``max(lengths) - lengths[b]``
    keys are padding. This is the rule torchaudio uses (it derives it from the same lengths); like
    torchaudio, a single utterance gets no padding mask.
    """
    if lengths.size(0) == 1:
        return None
    num_padded = lengths.max() - lengths  # (B,)
    positions = torch.arange(num_keys, device=lengths.device, dtype=lengths.dtype)
    return positions.unsqueeze(0) >= (num_keys - num_padded).unsqueeze(1)
