"""Notebook 11: the pruning band on a real lattice, and peak memory of the full against the pruned loss."""
import ctypes
from typing import Callable, Dict, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import torch
from matplotlib.lines import Line2D

from ...data.corpus import collate
from .heatmap import OKABE_ITO
from .lattice import plot_lattice


def model_outputs(pretrained, utterances: Sequence) -> Tuple[torch.Tensor, ...]:
    """What the loss sees for a batch: ``(encoder_out (B, T, D), predictor_out (B, U+1, D), targets (B, U),
    logit_lengths (B,), target_lengths (B,))``, the predictor fed ``[blank] + tokens``; no gradient."""
    model, blank = pretrained.model, pretrained.blank
    batch = collate(list(utterances), pretrained.feature_extractor)
    with torch.no_grad():
        enc, enc_lengths = model.transcribe(batch.features, batch.feature_lengths)
        B = batch.targets.shape[0]
        pred_in = torch.cat([torch.full((B, 1), blank, dtype=torch.long), batch.targets.long()], dim=1)
        pred, _, _ = model.predict(pred_in, batch.target_lengths + 1, None)
    return enc, pred, batch.targets, enc_lengths.to(torch.int32), batch.target_lengths


def band_figure(occupancy, starts, prune_range: int, token_names: Optional[Sequence[str]] = None,
                title: str = "", ax=None):
    """A (T, U+1) node occupancy with the band [s_t, s_t + S) of each frame outlined; nodes
    outside the band (never given to the joiner) are hatched."""
    occupancy = torch.as_tensor(occupancy).detach().float()
    T, U1 = occupancy.shape
    starts = torch.as_tensor(starts).long()[:T]
    if starts.shape != (T,):
        raise ValueError(f"starts must have {T} entries (one per frame), got {tuple(starts.shape)}")
    u = torch.arange(U1).view(1, U1)
    outside = (u < starts.view(T, 1)) | (u >= starts.view(T, 1) + prune_range)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.6 + 0.22 * U1))
    plot_lattice(occupancy, ax=ax, token_names=token_names, colorbar_label="occupancy", vmin=0, vmax=1,
                 masked=outside, masked_label="pruned away", title=title, legend=False)
    t = torch.arange(T + 1) - 0.5
    lo = torch.cat([starts, starts[-1:]]) - 0.5
    ax.step(t, lo, where="post", color=OKABE_ITO["vermillion"], lw=1.8)
    ax.step(t, lo + prune_range, where="post", color=OKABE_ITO["vermillion"], lw=1.8)
    ax.legend(handles=[Line2D([], [], color=OKABE_ITO["vermillion"], lw=1.8, label=f"band edges (S = {prune_range})")],
              loc="lower right", fontsize=8, framealpha=0.9)
    return ax


def memory_growth_figure(rows: Sequence[Dict], x: str, title: str = ""):
    """Peak memory (MiB) of each loss against ``x`` (a key of every row, e.g. ``"U"`` or ``"V"``).

    ``rows``: dicts with ``x`` and one ``"<name> MiB"`` entry per loss.
    """
    if not rows:
        raise ValueError("rows must not be empty")
    names = [k[:-4] for k in rows[0] if k.endswith(" MiB")]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    colours = [OKABE_ITO["vermillion"], OKABE_ITO["blue"], OKABE_ITO["green"], OKABE_ITO["orange"]]
    for name, colour in zip(names, colours):
        ax.plot([r[x] for r in rows], [r[f"{name} MiB"] for r in rows], marker="o", color=colour, label=name)
    ax.set_xlabel(x)
    ax.set_ylabel("peak memory (MiB)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


LOSS_STEPS = ("edu full", "torchaudio full", "pruned")


def loss_step(impl: str, B: int, T: int, U: int, V: int, D: int, S: int, seed: int = 0) -> Callable[[], float]:
    """Random encoder (B, T, D) and predictor (B, U+1, D) outputs, and a closure running one training
    step of the loss ``impl`` (forward + backward, joiner included; returns the loss):

    * ``"edu full"``: this package's joiner on all (B, T, U+1) nodes + ``emformer_edu.rnnt_loss``;
    * ``"torchaudio full"``: the same joiner + ``torchaudio.functional.rnnt_loss``;
    * ``"pruned"``: two Linear(D, V) projections + the simple loss, the band, the joiner on
      (B, T, S, D) + the pruned loss; backward of 0.5 * simple + pruned.
    Half the batch is 20 % shorter in T and U, as in a real padded batch.
    """
    from ...rnnt.loss_fast import rnnt_loss
    from ...rnnt import pruned as P
    from ...transducer.joiner import Joiner

    if impl not in LOSS_STEPS:
        raise ValueError(f"impl must be one of {LOSS_STEPS}, got {impl!r}")
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(B, T, D, generator=g).requires_grad_(True)
    pred = torch.randn(B, U + 1, D, generator=g).requires_grad_(True)
    targets = torch.randint(0, V - 1, (B, U), generator=g, dtype=torch.int32)
    ll = torch.full((B,), T, dtype=torch.int32)
    ll[1::2] = T - T // 5
    tl = torch.full((B,), U, dtype=torch.int32)
    tl[1::2] = U - U // 5
    torch.manual_seed(seed)
    joiner = Joiner(D, V)
    am_proj, lm_proj = torch.nn.Linear(D, V), torch.nn.Linear(D, V)
    params = [enc, pred, *joiner.parameters(), *am_proj.parameters(), *lm_proj.parameters()]

    def zero():
        for p in params:
            p.grad = None

    if impl == "pruned":
        band_joiner = P.joiner_on_band(joiner)

        def step():
            zero()
            out = P.pruned_rnnt_loss(enc, pred, am_proj(enc), lm_proj(pred), targets, ll, tl, band_joiner, S,
                                     blank=V - 1)
            (0.5 * out.simple + out.pruned).backward()
            return float(out.pruned.detach())
        return step
    if impl == "torchaudio full":
        import torchaudio
        loss_fn = torchaudio.functional.rnnt_loss
    else:
        loss_fn = rnnt_loss

    def step():
        zero()
        logits, _, _ = joiner(enc, ll, pred, tl + 1)
        loss = loss_fn(logits, targets, ll, tl, blank=V - 1)
        loss.backward()
        return float(loss.detach())
    return step


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], object]) -> int:
    """How far the process's resident memory rose above its level before ``fn()``, at the worst moment.

    torch's CPU tensors are invisible to ``tracemalloc``, so this asks the kernel (Linux): free
    memory goes back to the system (``malloc_trim``), the peak-RSS mark is reset to the current
    RSS (``/proc/self/clear_refs`` = 5), ``fn`` runs, and the new peak (VmHWM) minus the RSS before
    is returned.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as err:
        raise RuntimeError("peak_memory_bytes needs Linux (/proc/self/clear_refs and glibc)") from err
    before = _status_bytes("VmRSS")
    fn()
    return _status_bytes("VmHWM") - before
