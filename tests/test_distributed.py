"""Distributed training: torchrun with 2 gloo processes on the CPU gives the weights of one process.

The unit tests check the pieces in one process (sharding, SpecAugment of a shard, the shard laid out as
in the global batch); the end-to-end test launches ``python -m torch.distributed.run --nproc-per-node 2``
on the command line of ``python -m emformer_edu.train`` and compares with the plain command.
"""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from emformer_edu.dropout import global_batch
from emformer_edu.train import TrainConfig, Trainer, length_buckets, load_checkpoint, spec_augment
from emformer_edu.train.distributed import (
    SINGLE, DistEnv, backend_for, check_batch_size, current, device_for, launched_by_torchrun, shard, shard_parts,
)
import test_train  # its tiny model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**overrides):
    """test_train's tiny model (memory, left and right context on), with dropout on everywhere (the toy's
    0.1 in the encoder, 0.3 after the predictor's LSTM): every rank draws the global batch's masks and
    keeps its rows (emformer_edu.dropout), so N processes drop what one process drops."""
    return test_train.tiny_config(**{**dict(transformer_dropout=0.1, lstm_dropout=0.3), **overrides})


# ----------------------------------------------------------------------------- pieces, in one process
def test_no_process_group_means_one_process():
    assert current() == SINGLE and SINGLE.is_main and not SINGLE.is_distributed
    assert launched_by_torchrun({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert not launched_by_torchrun({})


def test_each_process_gets_its_gpu_and_nccl():
    assert device_for("cuda", DistEnv(3, 4, 1)) == torch.device("cuda", 1)  # LOCAL_RANK, not RANK
    assert device_for("cuda", SINGLE) == torch.device("cuda")
    assert device_for("cpu", DistEnv(1, 2, 1)) == torch.device("cpu")
    assert (backend_for("cuda"), backend_for("cuda:1"), backend_for("cpu")) == ("nccl", "nccl", "gloo")


def test_shards_are_contiguous_and_cover_the_global_batch():
    items = list(range(10, 18))
    shards = [shard(items, DistEnv(r, 4, r)) for r in range(4)]
    assert shards == [[10, 11], [12, 13], [14, 15], [16, 17]]
    assert shard(items, SINGLE) is items
    assert list(shard(range(8, 16), DistEnv(1, 2, 1))) == list(range(12, 16))


def test_batch_size_must_divide_into_the_processes():
    check_batch_size(8, 2)
    with pytest.raises(ValueError, match=r"batch_size \(9\) must be divisible by the number of processes \(2\)"):
        check_batch_size(9, 2)


def test_spec_augment_of_a_shard_is_its_rows_of_the_global_batch():
    torch.manual_seed(0)
    lengths = torch.tensor([30, 22, 41, 17], dtype=torch.int32)
    features = torch.randn(4, 45, 80)
    whole = spec_augment(features, lengths, torch.Generator().manual_seed(5))
    for rank in (0, 1):
        rows = slice(2 * rank, 2 * rank + 2)
        part = spec_augment(features[rows], lengths[rows], torch.Generator().manual_seed(5),
                            all_lengths=lengths, offset=2 * rank)
        assert torch.equal(part, whole[rows])


def objective(trainer, *part, rows=None):
    """What a training step differentiates with ``ctc_weight=0.3``: RNN-T + 0.3 CTC, each a mean over ``rows``."""
    rnnt, ctc = trainer.losses(*part, rows=rows, ctc=True)
    return rnnt + 0.3 * ctc


@pytest.mark.parametrize("parts", [1, 2])
def test_two_shards_give_the_global_batch_gradient(parts):
    """The mean of the two ranks' gradients (what DDP computes) is the one-process gradient, to float32
    rounding, also with length buckets and with dropout on: each rank lays its utterances out as in the
    one-process batch (or part), with a phantom longest utterance where it lacks it, and draws the part's
    dropout masks from the same random stream (global_batch). The objective includes the auxiliary CTC loss."""
    trainer = Trainer(TrainConfig(steps=1, batch_size=6, num_train=12, num_valid=1, stats_utterances=8,
                                  eval_every=0, length_buckets=parts), tiny_config(), progress=False)
    features, lengths, targets, target_lengths = trainer.batches.batch(0)
    params = list(trainer.model.parameters())

    def grad(loss):
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])

    torch.manual_seed(11)  # dropout's stream, the same for the one process and for each rank
    whole = grad(sum(objective(trainer, *part) * part[1].numel() / 6
                     for part in length_buckets(features, lengths, targets, target_lengths, parts)))
    torch.manual_seed(12)
    other_masks = grad(sum(objective(trainer, *part) * part[1].numel() / 6
                           for part in length_buckets(features, lengths, targets, target_lengths, parts)))
    assert (other_masks - whole).abs().max() > 1e-3 * whole.abs().max()  # dropout is on: masks matter
    ranks, phantoms = [], 0
    for rank in (0, 1):  # its 3 utterances, as its loader makes them: padded to their own longest
        rows = slice(3 * rank, 3 * rank + 3)
        T, U = int(lengths[rows].max()), int(target_lengths[rows].max())
        R = features.size(1) - int(lengths.max())
        mine = features[rows, : T + R], lengths[rows], targets[rows, :U], target_lengths[rows]
        loss = 0
        torch.manual_seed(11)
        for *part, n, where in shard_parts(*mine, lengths, target_lengths, offset=3 * rank, parts=parts):
            phantoms += part[1].numel() - n
            with global_batch(*where):
                loss = loss + objective(trainer, *part, rows=n) * n / 3
        ranks.append(grad(loss))
    assert phantoms >= 1  # the rank without the longest utterance got one
    mean = (ranks[0] + ranks[1]) / 2
    assert (mean - whole).abs().max() <= 1e-5 * whole.abs().max()


# ----------------------------------------------------------------------------- torchrun, end to end
def _train(*args, processes=1):
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                          str(processes)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *launcher, "-m", "emformer_edu.train", "--threads", "1", "--no-progress",
                           *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _weights(path):
    return load_checkpoint(str(path))["model"]


def _key_bias(name, tensor):
    """The key half of an attention's key/value bias: it adds q . b to every score of a query, which the
    softmax ignores, so its gradient is 0 in exact arithmetic. Both runs' "gradients" are rounding noise
    (~1e-8), which Adam (eps 1e-9) turns into steps of about +-lr in random directions: no two runs that
    round differently agree there, one process with another thread count included."""
    return name.endswith("emb_to_key_value.bias") and tensor.numel() % 2 == 0


def _max_difference(a, b):
    """Largest |a - b| over every weight but the key biases, and over those."""
    assert a.keys() == b.keys()
    rest, keys = 0.0, 0.0
    for name in a:
        d = (a[name].double() - b[name].double()).abs()
        if _key_bias(name, a[name]):
            half = d.numel() // 2
            keys, d = max(keys, float(d[:half].max())), d[half:]
        rest = max(rest, float(d.max()))
    return rest, keys


def test_torchrun_two_processes_train_the_weights_of_one(tmp_path):
    """Two gloo processes, dropout, the auxiliary CTC loss and the weight average on: the one-process weights and
    average, one checkpoint written by rank 0 alone, one history, one voice on stderr; their checkpoint resumes on
    one process and vice versa; an odd batch is refused.

    Tolerance: float32 sums in another order (the gradient averaged over 2 ranks instead of the mean over
    8) differ by ~1e-7 relative; Adam's steps (about lr per step, lr 3e-3 here) turn that into weight
    differences of ~1e-7..1e-6 after a few steps (measured: 4e-7). 1e-5 leaves room and still catches
    any real difference (a wrong shard, padding or loss weighting moves weights by ~lr = 3e-3)."""
    model = tmp_path / "model.json"
    model.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    recipe = ["--batch-size", "8", "--num-train", "16", "--num-valid", "2", "--stats-utterances", "8", "--lr", "3e-3",
              "--warmup-steps", "1", "--spec-augment", "--eval-every", "0", "--seed", "3", "--ctc-weight", "0.3",
              "--ema-decay", "0.5"]
    one, two = tmp_path / "one", tmp_path / "two"
    res1 = _train("--steps", "3", *recipe, "--model-config", str(model), "--out", str(one))
    assert res1.returncode == 0, res1.stderr
    res2 = _train("--steps", "3", *recipe, "--model-config", str(model), "--out", str(two), "--checkpoint-every", "1",
                  processes=2)
    assert res2.returncode == 0, res2.stderr

    rest, keys = _max_difference(_weights(one / "checkpoint.pt"), _weights(two / "checkpoint.pt"))
    print(f"2 processes vs 1 after 3 steps: max weight difference {rest:.2e} (key biases: {keys:.2e})")
    assert rest <= 1e-5, rest
    assert sorted(os.listdir(two)) == ["checkpoint.pt", "history.json"]  # no checkpoint.pt.tmp left over
    for text in ("model: ", "on 2 processes (4 utterances each per step)", "step 3: loss", "done: step 3"):
        assert res2.stderr.count(text) == 1, (text, res2.stderr)
    history1, history2 = (json.loads((d / "history.json").read_text()) for d in (one, two))
    assert [h["step"] for h in history2] == [3]
    assert history2[0]["loss"] == pytest.approx(history1[0]["loss"], rel=1e-5)
    blob = load_checkpoint(str(two / "checkpoint.pt"))
    assert blob["step"] == 3 and not any(k.startswith("module.") for k in blob["model"])

    # A 2-process checkpoint resumes on 1 process, a 1-process one on 2: the same 2 further steps, now
    # in 2 length buckets (on 2 processes: each rank's utterances of each bucket, DDP's no_sync in between).
    more = ["--steps", "5", "--length-buckets", "2"]
    res3 = _train("--resume", str(two / "checkpoint.pt"), *more, "--out", str(two))
    assert res3.returncode == 0, res3.stderr
    res4 = _train("--resume", str(one / "checkpoint.pt"), *more, "--out", str(one), processes=2)
    assert res4.returncode == 0, res4.stderr
    assert [load_checkpoint(str(d / "checkpoint.pt"))["step"] for d in (one, two)] == [5, 5]
    rest, keys = _max_difference(_weights(one / "checkpoint.pt"), _weights(two / "checkpoint.pt"))
    print(f"resumed across 1 <-> 2 processes, step 5: max weight difference {rest:.2e} (key biases: {keys:.2e})")
    assert rest <= 1e-5, rest
    averages = [load_checkpoint(str(d / "checkpoint.pt"))["weight_average"] for d in (one, two)]
    assert [a["updates"] for a in averages] == [5, 5]
    rest, keys = _max_difference(averages[0]["moment"], averages[1]["moment"])
    assert rest <= 1e-5, rest
    assert sorted(os.listdir(one)) == ["checkpoint.pt", "history.json"]

    bad = _train("--steps", "1", "--batch-size", "3", "--num-train", "8", "--out", str(tmp_path / "bad"), processes=2)
    assert bad.returncode != 0
    assert "batch_size (3) must be divisible by the number of processes (2)" in bad.stderr
    assert not (tmp_path / "bad").exists()
