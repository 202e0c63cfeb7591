"""Paired timing: run two implementations alternately in one process and report their ratio.

Each repetition times A and B back to back, alternating which goes first, so machine noise
(other processes, frequency changes) hits both alike; the reported ratio is the median of the
per-pair ratios A/B, which is far steadier than a ratio of separately measured means.
"""
import statistics
import time
from typing import Callable, Dict


def paired_ratio(fn_a: Callable[[], object], fn_b: Callable[[], object], reps: int = 20, warmup: int = 3) -> Dict:
    """Median and minimum seconds of A and of B, the median per-pair ratio A/B (``ratio``), and
    the last results of A and B (``a_out``, ``b_out``) so callers can check they agree."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b, ratios, out = [], [], [], {}
    for i in range(reps):
        order = (fn_a, fn_b) if i % 2 == 0 else (fn_b, fn_a)
        took = {}
        for fn in order:
            start = time.perf_counter()
            out[fn] = fn()
            took[fn] = time.perf_counter() - start
        times_a.append(took[fn_a])
        times_b.append(took[fn_b])
        ratios.append(took[fn_a] / took[fn_b])
    return {"a_s": statistics.median(times_a), "b_s": statistics.median(times_b), "ratio": statistics.median(ratios),
            "a_min": min(times_a), "b_min": min(times_b), "a_out": out[fn_a], "b_out": out[fn_b]}


def report(what: str, result: Dict[str, float], target: float) -> bool:
    """Print one result line with a verdict against ``target`` (ratio edu/torchaudio); True if met."""
    ok = result["ratio"] <= target
    print(f"{what:48s} edu {result['a_s'] * 1e3:9.2f} ms  torchaudio {result['b_s'] * 1e3:9.2f} ms  "
          f"ratio {result['ratio']:.3f}  target <= {target:.2f}  {'MET' if ok else 'NOT MET'}")
    return ok
