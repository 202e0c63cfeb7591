"""One training step (forward, RNN-T loss, backward) of the toy model: emformer_edu vs torchaudio, same weights.

Run:  .venv/bin/python benchmarks/bench_train_step.py
Both models hold identical weights (torchaudio_twin) and see the same batch; each side uses its own library's
loss (emformer_edu.rnnt_loss vs torchaudio.functional.rnnt_loss). Losses and gradients are checked equal
before timing. Target (issue 9): ratio edu/torchaudio <= 0.7.

Where edu saves (measured on the 2-core CPU): the joiner runs block by block in training
(transducer/joiner_fast.py) and the loss is the wavefront of rnnt/loss_fast.py. The ratio also moves
with the C allocator: torchaudio's (B, T, U, D) joiner tensors (16 MB here) come back from the OS as fresh
pages in some runs and not in others, so the script prints the page faults per step of each side.
"""
import dataclasses
import sys
from pathlib import Path

import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).parent))
import emformer_edu  # noqa: E402
from emformer_edu.train import prepend_blank  # noqa: E402
from paired import paired_ratio, report  # noqa: E402


def batch(cfg, B=32, T=160, U=24, seed=0):
    """Features (B, T + R, F) with unequal lengths, targets (B, U) without blank."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T + cfg.right_context_length, cfg.input_dim, generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g).to(torch.int32)
    lengths[0] = T
    targets = torch.randint(0, cfg.blank, (B, U), generator=g, dtype=torch.int32)
    target_lengths = torch.randint(U // 2, U + 1, (B,), generator=g).to(torch.int32)
    target_lengths[0] = U
    return x, lengths, targets, target_lengths


def step(model, loss_fn, x, lengths, targets, target_lengths, blank):
    model.zero_grad(set_to_none=True)
    logits, logit_lengths, _, _ = model(x, lengths, prepend_blank(targets, blank), target_lengths + 1)
    loss = loss_fn(logits, targets, logit_lengths, target_lengths, blank=blank, reduction="mean")
    loss.backward()
    return loss.detach()


def main() -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = emformer_edu.EmformerRNNTConfig.toy().replace(transformer_dropout=0.0)  # dropout off: same numbers
    edu = emformer_edu.emformer_rnnt_model(**dataclasses.asdict(cfg)).train()
    ta = emformer_edu.torchaudio_twin(edu)
    data = batch(cfg)
    run_edu = lambda: step(edu, emformer_edu.rnnt_loss, *data, cfg.blank)  # noqa: E731
    run_ta = lambda: step(ta, torchaudio.functional.rnnt_loss, *data, cfg.blank)  # noqa: E731
    loss_e, loss_t = run_edu(), run_ta()
    assert torch.allclose(loss_e, loss_t, rtol=1e-4), (float(loss_e), float(loss_t))
    for (name, a), b in zip(edu.named_parameters(), ta.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-5), name
    print(f"toy model ({sum(p.numel() for p in edu.parameters()):,} parameters), B=32, T=160 input frames, U=24, "
          f"V={cfg.num_symbols}; loss {float(loss_e):.4g} on both sides, gradients equal")
    ok = report("training step (forward + loss + backward)", paired_ratio(run_edu, run_ta, reps=15), target=0.7)
    print(f"minor page faults per step: edu {page_faults(run_edu):.0f}, torchaudio {page_faults(run_ta):.0f}")
    return 0 if ok else 1


def page_faults(fn, steps: int = 3) -> float:
    """Minor page faults per call of ``fn`` (fresh memory pages from the OS); NaN where not measurable."""
    try:
        import resource
    except ImportError:  # not on this platform
        return float("nan")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


if __name__ == "__main__":
    sys.exit(main())
