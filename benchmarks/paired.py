"""Paired timing: run two implementations alternately in one process and report their ratio.

Each repetition times A and B back to back, alternating which goes first, so machine noise
(other processes, frequency changes) hits both alike; the reported ratio is the median of the
per-pair ratios A/B, which is far steadier than a ratio of separately measured means.
"""
import statistics
import time
from typing import Callable, Dict


def paired_ratio(fn_a: Callable[[], object], fn_b: Callable[[], object], reps: int = 20, warmup: int = 3) -> Dict[str, float]:
    """Median seconds of A and of B, and the median per-pair ratio A/B."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b, ratios = [], [], []
    for i in range(reps):
        order = (fn_a, fn_b) if i % 2 == 0 else (fn_b, fn_a)
        took = {}
        for fn in order:
            start = time.perf_counter()
            fn()
            took[fn] = time.perf_counter() - start
        times_a.append(took[fn_a])
        times_b.append(took[fn_b])
        ratios.append(took[fn_a] / took[fn_b])
    return {"a_s": statistics.median(times_a), "b_s": statistics.median(times_b), "ratio": statistics.median(ratios)}


def report(what: str, result: Dict[str, float], target: float) -> bool:
    """Print one result line with a verdict against ``target`` (ratio edu/torchaudio); True if met."""
    ok = result["ratio"] <= target
    print(f"{what:48s} edu {result['a_s'] * 1e3:9.2f} ms  torchaudio {result['b_s'] * 1e3:9.2f} ms  "
          f"ratio {result['ratio']:.3f}  target <= {target:.2f}  {'MET' if ok else 'NOT MET'}")
    return ok
