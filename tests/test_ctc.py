"""The auxiliary CTC loss: the joiner without the predictor, an exact brute-force oracle, and the trainer's use of it."""
import itertools
import math

import pytest
import torch

from emformer_edu import EmformerRNNTConfig
from emformer_edu.rnnt.ctc import ctc_collapse, ctc_greedy_decode, ctc_logits, ctc_loss
from emformer_edu.train import TrainConfig, Trainer
from emformer_edu.transducer.model import build_model


def tiny_model():
    cfg = EmformerRNNTConfig.toy(5).replace(
        encoding_dim=12, segment_length=8, time_reduction_input_dim=8, transformer_num_heads=2, transformer_ffn_dim=16,
        transformer_num_layers=1, transformer_left_context_length=2, transformer_max_memory_size=2,
        symbol_embedding_dim=8)
    torch.manual_seed(0)
    return build_model(cfg)


def collapse(path, blank):
    """CTC's many-to-one map, written another way: merge repeats, then drop blanks."""
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return [k for k in merged if k != blank]


@pytest.mark.parametrize("path, expected", [
    ([4, 1, 1, 4, 1, 2, 4], [1, 1, 2]), ([1, 1, 1], [1]), ([4, 4], []), ([], []), ([2, 4, 2, 2, 3], [2, 2, 3]),
])
def test_ctc_collapse(path, expected):
    assert ctc_collapse(path, blank=4) == expected == collapse(path, 4)


def test_ctc_greedy_decode_is_the_collapsed_best_path_within_each_length():
    model = tiny_model()
    enc = torch.randn(2, 6, 12)
    lengths = torch.tensor([6, 3])
    best = ctc_logits(model.joiner, enc).argmax(-1)
    got = ctc_greedy_decode(model.joiner, enc, lengths, blank=4)
    assert got == [collapse(best[0].tolist(), 4), collapse(best[1, :3].tolist(), 4)]


def brute_force_ctc(log_probs, target, blank):
    """-log of the summed probability of every length-T symbol path that collapses to ``target``."""
    T, V = log_probs.shape
    scores = [sum(float(log_probs[t, k]) for t, k in enumerate(path))
              for path in itertools.product(range(V), repeat=T) if collapse(path, blank) == list(target)]
    if not scores:
        return math.inf
    top = max(scores)
    return -(top + math.log(sum(math.exp(x - top) for x in scores)))


def test_ctc_logits_are_the_joiner_with_the_predictor_left_out():
    model = tiny_model()
    enc = torch.randn(2, 5, 12)
    lengths = torch.tensor([5, 3])
    zero_predictor = torch.zeros(2, 1, 12)
    joint, _, _ = model.joiner(enc, lengths, zero_predictor, torch.tensor([1, 1]))
    assert torch.allclose(ctc_logits(model.joiner, enc), joint[:, :, 0], atol=1e-6)


@pytest.mark.parametrize("target, T", [([1, 2], 4), ([1, 1], 4), ([3], 3), ([1, 1, 2], 4)])
def test_ctc_loss_equals_the_sum_over_every_alignment(target, T):
    """Exact oracle: all 5**T paths enumerated (a repeat needs a blank between, so [1, 1] in 4 frames has fewer)."""
    model = tiny_model()
    torch.manual_seed(1)
    enc = torch.randn(2, T, 12, dtype=torch.float64)
    model = model.double()
    targets = torch.tensor([target, target])
    lengths = torch.tensor([T, T - 1])
    with torch.no_grad():
        got = ctc_loss(model.joiner, enc, lengths, targets, torch.tensor([len(target)] * 2), blank=4)
    with torch.no_grad():
        log_probs = torch.log_softmax(ctc_logits(model.joiner, enc), -1)
    for b in range(2):
        expected = brute_force_ctc(log_probs[b, : int(lengths[b])], target, blank=4)
        if math.isinf(expected):  # no alignment fits: zero_infinity
            assert got[b] == 0
        else:
            assert float(got[b]) == pytest.approx(expected, rel=1e-9)


def test_an_utterance_too_short_for_ctc_gets_no_ctc_gradient():
    model = tiny_model()
    enc = torch.randn(1, 2, 12, requires_grad=True)
    loss = ctc_loss(model.joiner, enc, torch.tensor([2]), torch.tensor([[1, 2, 3]]), torch.tensor([3]), blank=4)
    loss.sum().backward()
    assert float(loss.detach()) == 0 and torch.count_nonzero(enc.grad) == 0


def _tiny_trainer(**overrides):
    model = EmformerRNNTConfig.toy(21).replace(
        encoding_dim=24, segment_length=8, time_reduction_input_dim=8, transformer_num_heads=2, transformer_ffn_dim=32,
        transformer_num_layers=1, transformer_left_context_length=2, transformer_max_memory_size=2,
        symbol_embedding_dim=16, transformer_dropout=0.0)
    config = TrainConfig(**dict(dict(steps=2, batch_size=4, lr=3e-3, warmup_steps=1, num_train=8, num_valid=2,
                                     stats_utterances=8, eval_every=0, length_buckets=2), **overrides))
    return Trainer(config, model, progress=False)


def test_the_trainer_adds_weighted_ctc_to_the_objective_and_reports_rnnt():
    """One step with ctc_weight w: the reported loss is the RNN-T loss alone, the update follows
    RNN-T + w * CTC (the gradient of that sum, worked out by hand here, gives the same weights)."""
    plain, mixed = _tiny_trainer(), _tiny_trainer(ctc_weight=0.5)
    batch = mixed.batches.batch(0)
    rnnt, ctc = mixed.losses(*batch, ctc=True)
    assert torch.equal(rnnt, mixed.loss(*batch)) and float(ctc.detach()) > 0
    assert mixed.losses(*batch)[1] is None  # ctc off: not computed

    reference = _tiny_trainer(ctc_weight=0.0)
    from emformer_edu.train import length_buckets
    parts = list(length_buckets(*batch, 2))
    objective = sum((reference.losses(*p, ctc=True)[0] + 0.5 * reference.losses(*p, ctc=True)[1]) * p[1].numel() / 4
                    for p in parts)
    reference.optimizer.zero_grad()
    objective.backward()
    torch.nn.utils.clip_grad_norm_(reference.model.parameters(), reference.config.grad_clip)

    reported = mixed.train_step()  # its gradients stay in .grad after the step
    assert reported == pytest.approx(plain.train_step(), rel=1e-6)  # the same weights before the step: same RNN-T loss
    for a, b, c in zip(mixed.model.parameters(), reference.model.parameters(), plain.model.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-7)
    assert any(not torch.allclose(a.grad, c.grad, rtol=1e-2, atol=1e-4)
               for a, c in zip(mixed.model.parameters(), plain.model.parameters()))  # CTC changed the step


def test_the_model_has_no_ctc_parameter():
    assert _tiny_trainer(ctc_weight=0.3).model.state_dict().keys() == _tiny_trainer().model.state_dict().keys()


@pytest.mark.parametrize("bad", [-0.1, float("inf"), "0.3"])
def test_ctc_weight_must_be_a_finite_number(bad):
    with pytest.raises(ValueError, match="ctc_weight must be a finite number >= 0"):
        TrainConfig(ctc_weight=bad)
