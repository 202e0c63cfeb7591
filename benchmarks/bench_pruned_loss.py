"""Peak memory and time of one RNN-T training loss step, joiner included: the full loss against the pruned one.

Three ways to get d(loss)/d(encoder, predictor, joiner) from encoder (B, T, D) and predictor (B, U+1, D):

* ``edu full``: this package's joiner on all (B, T, U+1) nodes + ``emformer_edu.rnnt_loss``;
* ``torchaudio full``: the same joiner + ``torchaudio.functional.rnnt_loss``;
* ``pruned``: two Linear(D, V) projections + the simple loss, the band, the joiner on (B, T, S, D)
  + the pruned loss (``emformer_edu.rnnt.pruned``), trained on 0.5 * simple + pruned.

Peak memory: each measurement runs in a fresh subprocess (``--one``), which builds its inputs,
runs one step to warm up, then reports how far the resident set rose above its level before a
second step (``peak_memory_bytes``: VmHWM after resetting it): what the step needed at its worst. Time: the
three in one process, paired (``paired.py``). Results go to ``bench_pruned_loss.json`` beside
this script, which notebook 11 reads.

    nice -n 10 .venv/bin/python benchmarks/bench_pruned_loss.py            # B=8 T=500 U=100 V=500 D=256
    nice -n 10 .venv/bin/python benchmarks/bench_pruned_loss.py --quick    # small, seconds
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired import paired_ratio  # noqa: E402

from emformer_edu.teaching.viz.pruned import LOSS_STEPS as IMPLS, loss_step, peak_memory_bytes  # noqa: E402
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_pruned_loss.json")


def analytic_bytes(B, T, U, V, D, S, itemsize=4):
    """The largest tensors of each, in bytes: the joint logits, and the joiner's hidden activations."""
    return {"full logits (B,T,U+1,V)": B * T * (U + 1) * V * itemsize,
            "full hidden (B,T,U+1,D)": B * T * (U + 1) * D * itemsize,
            "pruned logits (B,T,S,V)": B * T * S * V * itemsize,
            "pruned hidden (B,T,S,D)": B * T * S * D * itemsize,
            "lattice table (B,T,U+1)": B * T * (U + 1) * itemsize}


def measure_one(impl, sizes):
    torch.set_num_threads(1)
    step = loss_step(impl, **sizes)
    step()  # warm-up: lazy imports and first-call set-up are not the loss's memory
    return {"impl": impl, "peak_growth_bytes": peak_memory_bytes(step)}


def peak_memory(impl, sizes):
    """Peak-RSS growth of one step of ``impl``, in a fresh Python process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", impl, "--sizes", json.dumps(sizes)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, json.loads(args.sizes))))
        return
    torch.set_num_threads(1)
    sizes = (dict(B=2, T=60, U=20, V=50, D=32, S=5) if args.quick
             else dict(B=8, T=500, U=100, V=500, D=256, S=5))
    print("sizes:", sizes, "float32, CPU, 1 thread")
    nbytes = analytic_bytes(**sizes)
    for k, v in nbytes.items():
        print(f"  {k:26s} {v / 2**20:10.1f} MiB")
    # Why it fits: the full step holds the logits, their log-softmax/gradient (torchaudio: two
    # gradients) and the joiner's hidden activations at once, about 4 logits + 2 hidden.
    print(f"  full step, upper estimate 4 x logits + 2 x hidden = "
          f"{(4 * nbytes['full logits (B,T,U+1,V)'] + 2 * nbytes['full hidden (B,T,U+1,D)']) / 2**30:.2f} GiB "
          f"(fits in 24 GiB)")
    mem = {impl: peak_memory(impl, sizes) for impl in IMPLS}
    print("\npeak memory growth of one step (fresh process each, VmHWM - VmRSS):")
    for impl in IMPLS:
        print(f"  {impl:16s} {mem[impl]['peak_growth_bytes'] / 2**20:10.1f} MiB")
    for full in ("edu full", "torchaudio full"):
        ratio = mem[full]["peak_growth_bytes"] / mem["pruned"]["peak_growth_bytes"]
        print(f"  ratio {full} / pruned {ratio:5.1f}")
    steps = {impl: loss_step(impl, **sizes) for impl in IMPLS}
    print(f"\ntime of one step (paired, {args.reps} reps, median):")
    timing = {}
    for full in ("edu full", "torchaudio full"):
        r = paired_ratio(steps[full], steps["pruned"], reps=args.reps, warmup=1)
        timing[full] = r
        print(f"  {full:16s} {r['a_s']:8.3f} s   pruned {r['b_s']:8.3f} s   ratio {full}/pruned {r['ratio']:.2f}")
    results = {"sizes": sizes, "analytic_bytes": nbytes, "quick": args.quick,
               "peak_growth_MiB": {k: round(v["peak_growth_bytes"] / 2**20, 1) for k, v in mem.items()},
               "seconds": {k: round(v["a_s"], 3) for k, v in timing.items()} | {
                   "pruned": round(timing["edu full"]["b_s"], 3)},
               "time_ratio_vs_pruned": {k: round(v["ratio"], 2) for k, v in timing.items()},
               "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    if not args.quick:
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
