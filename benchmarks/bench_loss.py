"""RNN-T loss, forward + backward: emformer_edu.rnnt.loss_fast.rnnt_loss vs torchaudio.functional.rnnt_loss.

Run:  .venv/bin/python benchmarks/bench_loss.py [--reps N] [--device cpu|cuda]

Both run in ONE process on the same inputs (N(0, 1) logits, full lengths, blank = V-1,
2 threads); losses and gradients are checked to agree first.

Time: forward + backward (``torch.autograd.grad`` of the mean loss w.r.t. the logits),
interleaved A/B/B/A pairs (benchmarks/paired.py), median per-pair ratio edu/torchaudio.
The machine may be shared, so several pairs are taken and only medians are reported.

Peak memory: the largest extra resident memory during one forward + backward, above what
was resident just before (the logits exist already; the gradient each returns counts).
On CPU it is measured as the kernel sees it: reset the process's peak RSS
(``echo 5 > /proc/self/clear_refs``), run, read ``VmHWM`` from ``/proc/self/status``,
subtract the RSS before the run. Large tensors are mmap-ed and returned to the OS when
freed, so this is each implementation's real high-water mark, C++ temporaries included
(torchaudio's kernel allocates outside Python, so ``tracemalloc`` would see nothing).
The median of several interleaved runs is reported, also as a multiple of the size of
the logits tensor: that shows how many full (B, T, U+1, V) buffers each keeps alive at
its peak (edu: log_softmax, recycled in place into the gradient; torchaudio: a gradient
made in forward plus ``grad * dy`` made in backward). On CUDA:
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

Targets: time ratio <= 0.1 (ten times faster) at both sizes; peak memory ratio <= 1.0 at
B=8,T=200,U=50,V=256 (printed for the other). The ratio rises a lot on a loaded machine: run it quiet.

Latency options (issue 11): the same forward + backward of edu's rnnt_loss with
``fastemit_lambda=0.01`` and with ``delay_penalty=0.01``, each paired against the plain call
(lambda = 0); they only touch the small (B, T, U+1, 2) edge tables, so the target is <= 1.10.
"""
import argparse
import gc
import re
import statistics
import sys
from pathlib import Path

import torch
import torchaudio.functional as taF

sys.path.insert(0, str(Path(__file__).parent))
from paired import paired_ratio, report  # noqa: E402

from emformer_edu.rnnt.loss_fast import rnnt_loss  # noqa: E402


def make_inputs(B, T, U, V, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g).to(device)
    targets = torch.randint(0, V - 1, (B, U), generator=g, dtype=torch.int32).to(device)
    # Full lengths, as in the stated sizes (torchaudio needs max lengths == padded sizes anyway).
    logit_lengths = torch.full((B,), T, dtype=torch.int32)
    target_lengths = torch.full((B,), U, dtype=torch.int32)
    return logits, targets, logit_lengths.to(device), target_lengths.to(device)


def fwd_bwd(fn, inputs):
    logits, targets, ll, tl = inputs
    x = logits.detach().requires_grad_(True)
    loss = fn(x, targets, ll, tl, blank=-1, reduction="mean")
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def _status_kb(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1))


def rss_peak_mb(run):
    """Peak resident memory above the starting point during ``run()``, in MiB (Linux)."""
    gc.collect()
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    out = run()
    peak = _status_kb("VmHWM")
    del out
    gc.collect()
    return (peak - before) / 1024


def cuda_peak_mb(run):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = run()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del out
    return (peak - base) / 2**20


def memory_ratio(inputs, device, runs=3):
    edu = lambda: fwd_bwd(rnnt_loss, inputs)  # noqa: E731
    ta = lambda: fwd_bwd(taF.rnnt_loss, inputs)  # noqa: E731
    if device == "cuda":
        m_edu = statistics.median(cuda_peak_mb(edu) for _ in range(runs))
        m_ta = statistics.median(cuda_peak_mb(ta) for _ in range(runs))
        print(f"    peak CUDA memory above start: edu {m_edu:8.1f} MiB  torchaudio {m_ta:8.1f} MiB")
        return m_edu / m_ta
    m_edu, m_ta = [], []
    for i in range(runs):  # interleaved as well
        for name, fn, acc in ((("edu", edu, m_edu), ("ta", ta, m_ta)) if i % 2 == 0
                              else (("ta", ta, m_ta), ("edu", edu, m_edu))):
            acc.append(rss_peak_mb(fn))
    m_edu, m_ta = statistics.median(m_edu), statistics.median(m_ta)
    size = inputs[0].numel() * inputs[0].element_size() / 2**20
    print(f"    peak RSS above start: edu {m_edu:7.1f} MiB ({m_edu / size:.2f} x logits)  "
          f"torchaudio {m_ta:7.1f} MiB ({m_ta / size:.2f} x logits; logits = {size:.1f} MiB)")
    return m_edu / m_ta


def check_agreement(inputs):
    loss_e, grad_e = fwd_bwd(rnnt_loss, inputs)
    loss_t, grad_t = fwd_bwd(taF.rnnt_loss, inputs)
    dl = (loss_e - loss_t).abs().item()
    dg = (grad_e - grad_t).abs().max().item()
    # float32 posteriors carry ~1e-7 relative to the loss in both implementations.
    tol = 2e-7 * max(1.0, loss_t.abs().item())
    print(f"    agreement: loss {loss_t.item():.3f}, |loss diff| {dl:.2e}, max |grad diff| {dg:.2e} (tol {tol:.1e})")
    assert dl <= tol and dg <= tol, "implementations disagree"


def latency_option_ratios(inputs, reps, sync):
    """Time of rnnt_loss with each latency option over the plain call, paired; True if all met."""
    plain_loss, _ = fwd_bwd(rnnt_loss, inputs)
    ok = True
    for kw in (dict(fastemit_lambda=0.01), dict(delay_penalty=0.01)):
        loss, _ = fwd_bwd(lambda *a, **k: rnnt_loss(*a, **k, **kw), inputs)
        if "fastemit_lambda" in kw:
            assert torch.equal(loss, plain_loss), "FastEmit must not change the loss value"

        def with_option():
            fwd_bwd(lambda *a, **k: rnnt_loss(*a, **k, **kw), inputs)
            sync()

        def plain():
            fwd_bwd(rnnt_loss, inputs)
            sync()

        res = paired_ratio(with_option, plain, reps=reps, warmup=1)
        (name, value), = kw.items()
        met = res["ratio"] <= 1.10
        ok &= met
        label = f"  {name}={value} vs {name}=0"
        print(f"{label:48s} with {res['a_s'] * 1e3:9.2f} ms  without {res['b_s'] * 1e3:9.2f} ms  "
              f"ratio {res['ratio']:.3f}  target <= 1.10  {'MET' if met else 'NOT MET'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9, help="timed pairs per size (default 9)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = args.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    ok = True
    cases = [  # (sizes, time target, memory target or None)
        ((8, 200, 50, 256), 0.1, 1.0),
        ((4, 250, 60, 1024), 0.1, None),
    ]
    for (B, T, U, V), time_target, mem_target in cases:
        print(f"B={B} T={T} U={U} V={V} float32, {device}, forward+backward, mean reduction")
        inputs = make_inputs(B, T, U, V, device)
        check_agreement(inputs)

        def edu():
            fwd_bwd(rnnt_loss, inputs)
            sync()

        def ta():
            fwd_bwd(taF.rnnt_loss, inputs)
            sync()

        res = paired_ratio(edu, ta, reps=args.reps, warmup=1)
        ok &= report(f"  time  B={B},T={T},U={U},V={V}", res, time_target)
        print(f"    {1 / res['ratio']:.1f}x faster")
        ok &= latency_option_ratios(inputs, args.reps, sync)
        try:
            mem = memory_ratio(inputs, device)
        except OSError as err:  # no /proc/self/clear_refs (not Linux, or not allowed)
            print(f"  memory: cannot measure peak RSS here ({err}); memory target NOT CHECKED")
            ok = False
            continue
        if mem_target is None:
            print(f"  memory ratio edu/torchaudio {mem:.3f} (no target)")
        else:
            met = mem <= mem_target
            ok &= met
            print(f"  memory ratio edu/torchaudio {mem:.3f}  target <= {mem_target:.2f}  {'MET' if met else 'NOT MET'}")
    print("ALL TARGETS MET" if ok else "SOME TARGETS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
