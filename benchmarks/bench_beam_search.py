"""Beam search speed: emformer_edu.RNNTBeamSearch vs torchaudio.models.RNNTBeamSearch.

Both decoders run in ONE process on the SAME torchaudio Emformer RNN-T (random
weights, joiner sharpened so that it emits a realistic mix of blanks and tokens),
in paired repetitions whose order alternates (A B, B A, ...). We report median
times and the ratio edu / torchaudio for

* search  : beam search over precomputed encoder output (the decoder alone),
* forward : transcribe + search (the public full-context API),
* stream  : infer() chunk after chunk (transcribe_streaming + search),

and check that the hypotheses (tokens and scores) are identical. Target: ratio <= 0.8,
judged on the median of the per-pair ratios, which is robust when other processes
load the machine (both members of a pair see roughly the same load); the ratio of
median times is printed too.

For information only: the decoder on emformer_edu's own model, and the floor: the share of
torchaudio's search time spent inside ``model.join`` and ``model.predict``. Results must equal
torchaudio's bit for bit, so a decoder makes exactly torchaudio's model calls, and no decoder
can have a ratio below that share. (A variant that packed the hypotheses' predictor states into
one tensor to cut the bookkeeping was measured here and removed: it was no faster.)

    python benchmarks/bench_beam_search.py [--reps N]
"""

import argparse
import copy
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch
import torchaudio

import emformer_edu
from emformer_edu import RNNTBeamSearch, emformer_rnnt_model

sys.path.insert(0, str(Path(__file__).parent))
from paired import paired_ratio  # noqa: E402

TARGET = 0.8
BEAM_WIDTH = 8
SECONDS = 4.0
HOP_S = 0.010
# torchaudio's base model, 4 layers deep and 512 wide, without dropout.
CFG = emformer_edu.EmformerRNNTConfig.base(4097).replace(
    encoding_dim=512, transformer_num_layers=4, transformer_dropout=0.0, lstm_dropout=0.0)
BLANK = CFG.num_symbols - 1


def build_model():
    torch.manual_seed(0)
    model = torchaudio.models.emformer_rnnt_model(**dataclasses.asdict(CFG)).eval()
    with torch.no_grad():  # random joiners are ~uniform; sharpen and favour blank
        model.joiner.linear.weight.mul_(4.0)
        model.joiner.linear.bias[BLANK] += 10.0
    return model


def chunks(x):
    """Whole segments only, as a live stream would deliver them."""
    n = (x.shape[1] - CFG.right_context_length) // CFG.segment_length
    return [c for c, _ in emformer_edu.streaming_chunks(x, CFG.segment_length, CFG.right_context_length)[:n]]


def run_stream(decoder, x):
    state = hyps = None
    for c in chunks(x):
        hyps, state = decoder.infer(c, torch.tensor([c.shape[1]]), BEAM_WIDTH, state, hyps)
    return hyps


def same(a, b):
    return [h[0] for h in a] == [h[0] for h in b] and [float(h[3]) for h in a] == [float(h[3]) for h in b]


def model_share(model, search, reps=3):
    """Fastest of ``reps`` runs of ``search()``: (total seconds, seconds inside model.join/predict)."""
    inside = [0.0]

    def timed(method):
        def call(*args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                inside[0] += time.perf_counter() - start
        return call

    model.join, model.predict = timed(model.join), timed(model.predict)  # instance attributes shadow the methods
    try:
        runs = []
        for _ in range(reps):
            inside[0] = 0.0
            start = time.perf_counter()
            search()
            runs.append((time.perf_counter() - start, inside[0]))
    finally:
        del model.join, model.predict
    return min(runs)


def paired(name, f_edu, f_ta, reps):
    """Paired timing (benchmarks/paired.py, one warm-up pair). Returns
    (median edu, median ta, ratio of medians, median of per-pair ratios, identical)."""
    r = paired_ratio(f_edu, f_ta, reps=reps, warmup=1)
    m_edu, m_ta, pair_ratio = r["a_s"], r["b_s"], r["ratio"]
    ok = same(r["a_out"], r["b_out"])
    print(
        f"{name:8s} median edu {m_edu * 1e3:7.1f} ms  torchaudio {m_ta * 1e3:7.1f} ms  ratio {m_edu / m_ta:5.3f}"
        f"  | paired-ratio median {pair_ratio:5.3f}  | min edu {r['a_min'] * 1e3:7.1f} ms"
        f"  torchaudio {r['b_min'] * 1e3:7.1f} ms  | identical: {ok}"
    )
    if m_edu > 1.5 * r["a_min"] or m_ta > 1.5 * r["b_min"]:
        print(f"{'':8s} warning: medians far above minima - other processes loaded the machine; "
              "trust the paired ratio (or rerun)")
    return m_edu, m_ta, m_edu / m_ta, pair_ratio, ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(2)

    model = build_model()
    n_frames = int(round(SECONDS / HOP_S))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, n_frames + CFG.right_context_length, CFG.input_dim, generator=g)
    length = torch.tensor([x.shape[1]])  # as torchaudio's pipeline: includes the right-context padding

    edu = RNNTBeamSearch(model, BLANK)
    ta = torchaudio.models.RNNTBeamSearch(model, BLANK)

    print(
        f"beam width {BEAM_WIDTH}, {CFG.transformer_num_layers}-layer Emformer RNN-T "
        f"(D={CFG.encoding_dim}, V={CFG.num_symbols}, stride {CFG.time_reduction_stride}, "
        f"segment {CFG.segment_length}, rc {CFG.right_context_length}), "
        f"{SECONDS:g} s = {n_frames} frames + {CFG.right_context_length} rc, "
        f"torch threads {torch.get_num_threads()}, {args.reps} paired reps (median)"
    )
    print("load average at start (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg())
    with torch.inference_mode():
        enc_out, _ = model.transcribe(x, length)
        best = edu.search(enc_out, BEAM_WIDTH)[0]
        print(f"encoder frames {enc_out.shape[1]}, best hypothesis: {len(best.tokens) - 1} tokens, score {best.score:.3f}")
        results = [
            paired("search", lambda: edu.search(enc_out, BEAM_WIDTH), lambda: ta._search(enc_out, None, BEAM_WIDTH), args.reps),
            paired("forward", lambda: edu(x, length, BEAM_WIDTH), lambda: ta(x, length, BEAM_WIDTH), args.reps),
            paired("stream", lambda: run_stream(edu, x), lambda: run_stream(ta, x), args.reps),
        ]
        edu_model = emformer_rnnt_model(**dataclasses.asdict(CFG)).eval()
        edu_model.load_state_dict(copy.deepcopy(model.state_dict()), strict=True)
        edu_on_edu = RNNTBeamSearch(edu_model, BLANK)
        print("info: edu decoder on the emformer_edu model vs torchaudio decoder on torchaudio's model")
        paired("edu-full", lambda: edu_on_edu(x, length, BEAM_WIDTH), lambda: ta(x, length, BEAM_WIDTH), args.reps)
        ta_total, ta_model = model_share(model, lambda: ta._search(enc_out, None, BEAM_WIDTH))
        edu_total, edu_model_s = model_share(model, lambda: edu.search(enc_out, BEAM_WIDTH))
        print(
            f"info: inside model.join/predict: torchaudio {ta_model * 1e3:.1f} of {ta_total * 1e3:.1f} ms, "
            f"edu {edu_model_s * 1e3:.1f} of {edu_total * 1e3:.1f} ms; decoder bookkeeping: torchaudio "
            f"{(ta_total - ta_model) * 1e3:.1f} ms, edu {(edu_total - edu_model_s) * 1e3:.1f} ms. Floor for the search "
            f"ratio (same model calls, zero bookkeeping): {ta_model / ta_total:.3f}"
        )

    print("load average at end   (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg())
    identical = all(r[4] for r in results)
    met = all(r[3] <= TARGET for r in results)
    print(f"hypotheses identical to torchaudio: {'YES' if identical else 'NO'}")
    print(
        f"target edu/torchaudio <= {TARGET} (median paired ratio; search, forward, stream): "
        f"{'MET' if met else 'NOT MET'} ({', '.join(f'{r[3]:.3f}' for r in results)}); "
        f"ratio of medians: {', '.join(f'{r[2]:.3f}' for r in results)}"
    )
    if not identical:
        raise SystemExit("hypotheses differ from torchaudio")


if __name__ == "__main__":
    main()
