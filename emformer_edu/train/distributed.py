"""Training on several processes: ``torchrun``, ``DistributedDataParallel`` and a global batch cut into shards.

The command line is the same on one process and on N::

    python -m emformer_edu.train --steps 6 --batch-size 8 --out D                      # one process
    torchrun --standalone --nproc-per-node 2 -m emformer_edu.train --steps 6 --batch-size 8 --out D

``torchrun`` starts N copies and tells each who it is through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`init` reads them and joins the
process group (gloo for CPU tensors, NCCL for CUDA ones); without them it does nothing, and training
is the plain one-process loop, number for number.

How N processes give the weights of one:

* ``batch_size`` stays the **global** batch B; each rank trains on b = B / N of its utterances
  (rank r: items ``r * b ... (r + 1) * b - 1`` of the step's list, :func:`shard`). B must be a
  multiple of N.
* Every rank lays its shard out as in the global batch (:func:`as_in_global_batch`): padded to the
  global batch's longest utterance and target, plus a phantom utterance of the longest length where
  the shard lacks it (the Emformer's key padding mask counts from the batch's longest utterance), so
  each utterance gets the numbers it gets on one process. With ``length_buckets`` > 1 every rank cuts
  the global batch into the parts one process would (:func:`shard_parts`) and runs its utterances of
  each part, laid out as in that part.
* Each rank's loss is the sum of its utterances' losses / b (its shard's mean; a phantom row left out);
  ``DistributedDataParallel`` averages the gradients over the N ranks during ``backward``, which gives
  the gradient of (sum of all B losses) / B, the one-process loss. Every rank then takes the same Adam
  step on the same averaged gradient (clipped by the same norm).
* The same seeds on every rank: the same initial weights (DDP broadcasts rank 0's anyway), data
  order and SpecAugment draws (drawn for the whole global batch, each rank keeping its rows).

* Dropout drops what it drops on one process: inside :func:`emformer_edu.dropout.global_batch` every
  rank draws the mask of the whole part (the same draw, from the same random stream) and keeps its rows.

What still differs is float32 rounding (sums in another order; ~1e-7 on the weights after a few
steps). (On CUDA, dropout's fused kernel draws differently from the CPU's; there, dropout on makes
the N-process run another random draw.)
One parameter shows rounding loudly: an attention's key bias adds the same q . b to all scores of a
query, which the softmax ignores, so its exact gradient is 0 and what backward returns is rounding
noise (~1e-8); Adam (eps 1e-9) turns that noise into steps of about the learning rate, in directions
that differ between any two runs that round differently.

On GPUs (``--device cuda``, one GPU per process: ``cuda:LOCAL_RANK``) the backend is NCCL; the data,
features and evaluation stay on the CPU.

Only rank 0 (:attr:`DistEnv.is_main`) evaluates, prints, and writes checkpoints, history and exports;
the others wait at a barrier meanwhile. Checkpoints hold the unwrapped model's ``state_dict``
(no ``module.`` prefix), so a run can resume on another number of processes.
"""
import contextlib
import os
from typing import Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "launched_by_torchrun", "init", "current", "shutdown", "barrier", "check_batch_size",
           "device_for", "shard", "gather_lengths", "as_in_global_batch", "shard_parts", "global_mean", "backend_for"]


class DistEnv(NamedTuple):
    """Where this process stands: ``rank`` in ``0 .. world_size - 1``; ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, prints and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


SINGLE = DistEnv()


def launched_by_torchrun(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether ``torchrun`` (``python -m torch.distributed.run``) started this process: it sets RANK and WORLD_SIZE."""
    environ = os.environ if environ is None else environ
    return "RANK" in environ and "WORLD_SIZE" in environ


def backend_for(device: str = "cpu") -> str:
    """``"nccl"`` for CUDA tensors (one GPU per process), ``"gloo"`` for CPU tensors."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init(device: str = "cpu") -> DistEnv:
    """Join torchrun's process group if this process was started by torchrun; else :data:`SINGLE`, doing nothing.

    ``device`` picks the backend (:func:`backend_for`). A group already initialized (by torchrun's
    process or by the caller) is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_available():
        raise RuntimeError("torchrun started this process, but this torch build has no torch.distributed.")
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return current()


def device_for(device: str, env: DistEnv) -> torch.device:
    """The device this process trains on: ``"cuda"`` on N processes means ``cuda:LOCAL_RANK`` (one GPU each)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and env.is_distributed:
        return torch.device("cuda", env.local_rank)
    return device


def current() -> DistEnv:
    """This process's place in the initialized process group, or :data:`SINGLE` if there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def barrier() -> None:
    """Wait for every rank (nothing to wait for without a process group)."""
    if current().is_distributed:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def shutdown(clean: bool = True) -> None:
    """Leave the process group: after a barrier if ``clean`` (every rank got here), at once after an error."""
    if dist.is_available() and dist.is_initialized():
        if clean:
            with contextlib.suppress(Exception):
                barrier()
        dist.destroy_process_group()


def check_batch_size(batch_size: int, world_size: int) -> None:
    """``ValueError`` unless the global batch splits into ``world_size`` equal shards."""
    if batch_size % world_size:
        raise ValueError(
            f"batch_size ({batch_size}) must be divisible by the number of processes ({world_size}): "
            f"--batch-size is the global batch, and each process trains on batch_size / {world_size} of its "
            f"utterances. Use e.g. --batch-size {max(world_size, batch_size // world_size * world_size)}.")


def shard(items: Sequence, env: DistEnv) -> Sequence:
    """Rank ``env.rank``'s contiguous share of one global batch's ``items`` (all of them on one process)."""
    if env.world_size == 1:
        return items
    check_batch_size(len(items), env.world_size)
    b = len(items) // env.world_size
    return items[env.rank * b: (env.rank + 1) * b]


def gather_lengths(lengths: torch.Tensor, target_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The global batch's ``lengths (B,)`` and ``target_lengths (B,)`` from every rank's ``(b,)`` ones, in rank
    order, i.e. in the order of the global batch (this rank's own on one process)."""
    env = current()
    if not env.is_distributed:
        return lengths, target_lengths
    mine = torch.stack([lengths, target_lengths]).to(torch.int64)  # (2, b)
    if dist.get_backend() == "nccl":
        mine = mine.cuda()
    parts = [torch.empty_like(mine) for _ in range(env.world_size)]
    dist.all_gather(parts, mine)
    everything = torch.cat(parts, dim=1).cpu()  # (2, B)
    return everything[0].to(lengths.dtype), everything[1].to(target_lengths.dtype)


def as_in_global_batch(
    features: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
    all_lengths: torch.Tensor, all_target_lengths: torch.Tensor, right_context: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """This rank's utterances laid out so that each gets the numbers it gets in the (global) batch of
    ``all_lengths``, ``all_target_lengths``.

    ``features (b, T_b + R, F)`` -> ``(b', T + R, F)`` and ``targets (b, U_b)`` -> ``(b', U)``, with T and U the
    global batch's longest utterance and target (zeros appended, or padding cut off: padded frames and
    the R right-context frames are zeros alike). That alone is not enough: the Emformer, as torchaudio's,
    masks the last ``max(lengths) - lengths[i]`` keys of utterance i, counting from the longest utterance
    *in the tensor*, and gives a batch of one no padding mask at all. So where this rank lacks the global
    batch's longest utterance (or holds one utterance of several) a phantom one is appended: zero features
    of T frames, a one-token target; then ``b' = b + 1``, and the caller leaves the last row out of the loss
    (it takes no part in the other rows' numbers: the model computes every row on its own). Returns the
    four tensors. ``right_context``: the R zero frames appended after the longest utterance of ``features``
    (default: ``features.size(1) - max(lengths)``, right when ``features`` is padded to its own longest).
    """
    R = features.size(1) - int(lengths.max()) if right_context is None else right_context
    T, U = int(all_lengths.max()), int(all_target_lengths.max())
    if features.size(1) > T + R:
        features = features[:, : T + R]
    features = torch.nn.functional.pad(features, (0, 0, 0, T + R - features.size(1)))
    targets = torch.nn.functional.pad(targets[:, :U], (0, U - min(U, targets.size(1))))
    if int(lengths.max()) < T or (lengths.numel() == 1 and all_lengths.numel() > 1):
        phantom = _phantom(features, lengths, targets, target_lengths, T, U, R)
        features, lengths, targets, target_lengths = (
            torch.cat(pair) for pair in zip((features, lengths, targets, target_lengths), phantom))
    return features, lengths, targets, target_lengths


def _phantom(features, lengths, targets, target_lengths, T: int, U: int, R: int):
    """One phantom utterance shaped like the others: zero features of T + R frames ``(1, T + R, F)``, length T,
    a one-token target ``(1, U)``."""
    return (features.new_zeros(1, T + R, features.size(2)), lengths.new_full((1,), T), targets.new_zeros(1, U),
            target_lengths.new_ones(1))


def shard_parts(
    features: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
    all_lengths: torch.Tensor, all_target_lengths: torch.Tensor, offset: int, parts: int = 1,
):
    """This rank's share of the global batch's ``parts`` length buckets (:func:`~.batches.length_buckets`).

    The global batch (lengths ``all_lengths (B,)``; this rank's utterances are ``offset .. offset + b - 1``
    of it) is cut into parts as one process cuts it; for each part that holds some of this rank's
    utterances, yields them laid out as in that part (:func:`as_in_global_batch`) and their number
    ``rows`` (a phantom row may follow them): ``(features, lengths, targets, target_lengths, rows)``.
    Each rank's loss ``sum over its parts of (sum of their rows' losses) / b``, averaged over the N ranks
    by DDP, is the one-process loss: the sum of all B losses / B.

    Also yields ``where = (rows of the part, positions of this rank's rows in it; -1: the phantom)``, for
    :func:`emformer_edu.dropout.global_batch`, so that dropout drops what it drops on one process. A part
    without any of this rank's utterances still comes, as the phantom alone (``rows`` 0): running it keeps
    this rank's random stream in step with the others' (dropout draws the part's mask on every rank).
    """
    if parts == 1:
        order = [torch.arange(all_lengths.numel())]
    else:
        order = torch.argsort(all_lengths, descending=True, stable=True).tensor_split(parts)
    b = lengths.numel()
    R = features.size(1) - int(lengths.max())  # the appended right-context frames
    for idx in order:
        held = (idx >= offset) & (idx < offset + b)
        mine, positions = idx[held] - offset, held.nonzero().flatten()
        if mine.numel():
            laid_out = as_in_global_batch(features[mine], lengths[mine], targets[mine], target_lengths[mine],
                                          all_lengths[idx], all_target_lengths[idx], right_context=R)
        else:  # the phantom alone, of the part's longest length and target
            laid_out = _phantom(features, lengths, targets, target_lengths, int(all_lengths[idx].max()),
                                int(all_target_lengths[idx].max()), R)
        if laid_out[1].numel() > mine.numel():
            positions = torch.cat([positions, positions.new_full((1,), -1)])
        yield (*laid_out, mine.numel(), (idx.numel(), positions))


def global_mean(value: float) -> float:
    """The mean of ``value`` over the ranks (``value`` itself on one process)."""
    env = current()
    if not env.is_distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t) / env.world_size
