"""The spoken model's report card: error rates under each listening condition, and word-end delays.

::

    python -m emformer_edu.train.report --utterances 200          # the shipped pretrained.spoken()
    python -m emformer_edu.train.report --assets DIR --name NAME  # an exported run

prints one markdown table, CER / WER in each cell, greedy and beam search side by side:

* rows "full context" and "streaming": the held-out test split (unseen voices and word pairs,
  training's noise and rooms), decoded over the whole utterance and chunk by chunk;
* one row per other :data:`~emformer_edu.data.spoken.CONDITIONS` entry (clean seen voices, clean
  unseen, noisy unseen, fast unseen), decoded chunk by chunk as a live recognizer would;

then :func:`~emformer_edu.train.latency.word_end_delays` of streaming greedy decoding on the held-out
split. Every row reads the same ``--utterances`` sentences (same seed), so rows differ only in how
they are heard and decoded.
"""
import argparse
import sys
from typing import Dict, List, Optional, Sequence

import torch

from ..data.spoken import CONDITIONS
from .latency import WordEndDelays, word_end_delays
from .metrics import TERResult
from .pretrained import HELD_OUT_SEED, Pretrained, load_exported, spoken

__all__ = ["ROWS", "accuracy_table", "format_table", "held_out_delays", "main"]

# (row label, listening condition, streaming)
ROWS = (("full context", "held out", False), ("streaming", "held out", True)) + tuple(
    (name, name, True) for name in CONDITIONS if name != "held out")


def accuracy_table(pre: Pretrained, num_utterances: int = 200, beam_width: int = 4, seed: int = HELD_OUT_SEED,
                   rows: Sequence[str] = tuple(r for r, _, _ in ROWS), progress=None) -> Dict[str, Dict[str, TERResult]]:
    """``{row: {"greedy": TERResult, "beam": TERResult}}`` for the :data:`ROWS` named in ``rows``.

    ``progress(message)``, if given, is called before each row (they take seconds to minutes)."""
    if pre.corpus != "spoken":
        raise ValueError(f"the accuracy table is for spoken models; this one is {pre.corpus!r}.")
    known = {r: (c, s) for r, c, s in ROWS}
    unknown = [r for r in rows if r not in known]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; rows are {list(known)}.")
    table = {}
    for row in rows:
        condition, streaming = known[row]
        if progress is not None:
            progress(row)
        table[row] = {name: pre.evaluate(num_utterances, width, streaming, seed, condition)
                      for name, width in (("greedy", None), ("beam", beam_width))}
    return table


def format_table(table: Dict[str, Dict[str, TERResult]], beam_width: int = 4) -> str:
    """The table as markdown: ``CER / WER`` in percent per cell."""
    cell = lambda r: f"{100 * r.cer:.1f} / {100 * r.wer:.1f}"  # noqa: E731
    lines = [f"| CER / WER (%) | greedy | beam (width {beam_width}) |", "|---|---|---|"]
    lines += [f"| {row} | {cell(res['greedy'])} | {cell(res['beam'])} |" for row, res in table.items()]
    return "\n".join(lines)


def held_out_delays(pre: Pretrained, num_utterances: int = 200, seed: int = HELD_OUT_SEED,
                    beam_width: Optional[int] = None) -> WordEndDelays:
    """Word-end delays of streaming decoding (greedy by default) on the held-out split."""
    data = pre.held_out(num_utterances, seed)
    return word_end_delays(pre.model, [data[i] for i in range(len(data))], pre.feature_extractor, pre.blank,
                           pre.vocab, beam_width=beam_width, streaming=True)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emformer_edu.train.report", description=__doc__.split("\n")[0])
    p.add_argument("--utterances", type=int, default=200, help="held-out sentences per row (default 200)")
    p.add_argument("--beam-width", type=int, default=4)
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out seed (default: data no step saw)")
    p.add_argument("--assets", help="directory of exported files (default: the shipped pretrained.spoken())")
    p.add_argument("--name", default="spoken", help="file name prefix in --assets (default spoken)")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    pre = load_exported(a.assets, a.name) if a.assets else spoken()
    table = accuracy_table(pre, a.utterances, a.beam_width, a.seed,
                           progress=lambda row: print(f"... {row}", file=sys.stderr, flush=True))
    print(format_table(table, a.beam_width))
    print(held_out_delays(pre, a.utterances, a.seed).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
