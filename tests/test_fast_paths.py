"""The joiner's training path (:mod:`emformer_edu.transducer.joiner_fast`, block by block with a hand-written
backward) agrees with the readable joiner to the bit, and is used only where it applies."""
import pytest
import torch

from emformer_edu.transducer import joiner_fast
from emformer_edu.transducer.joiner import Joiner


def _readable_join(joiner, source, target):
    """The readable joiner's computation, always (whatever path ``Joiner.forward`` picks)."""
    return joiner.linear(joiner.activation(source.unsqueeze(2) + target.unsqueeze(1)))


def _join_and_grads(fn, joiner, source, target, d_logits):
    source, target = source.clone().requires_grad_(), target.clone().requires_grad_()
    logits = fn(source, target)
    params = [joiner.linear.weight, joiner.linear.bias]
    return logits, torch.autograd.grad(logits, [source, target, *params], d_logits), logits.grad_fn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 20])  # one utterance per block, two, all at once
def test_fast_joiner_equals_readable_joiner_to_the_bit(dtype, block_bytes, monkeypatch):
    monkeypatch.setattr(joiner_fast, "BLOCK_BYTES", block_bytes)
    torch.manual_seed(0)
    joiner = Joiner(12, 9).to(dtype)
    source, target = torch.randn(5, 7, 12, dtype=dtype), torch.randn(5, 4, 12, dtype=dtype)
    d_logits = torch.randn(5, 7, 4, 9, dtype=dtype)
    lengths = torch.tensor([7, 6, 5, 4, 3])
    fast, fast_grads, fast_fn = _join_and_grads(lambda s, t: joiner(s, lengths, t, lengths)[0],
                                                joiner, source, target, d_logits)
    plain, plain_grads, plain_fn = _join_and_grads(lambda s, t: _readable_join(joiner, s, t),
                                                   joiner, source, target, d_logits)
    assert type(fast_fn).__name__.startswith("ReluJoin") and not type(plain_fn).__name__.startswith("ReluJoin")
    assert torch.equal(fast, plain)
    for name, a, b in zip(["source", "target", "weight", "bias"], fast_grads, plain_grads):
        assert torch.equal(a, b), name


def test_joiner_takes_the_readable_path_without_gradients_or_with_tanh():
    torch.manual_seed(0)
    source, target = torch.randn(2, 3, 6), torch.randn(2, 4, 6)
    lengths = torch.tensor([3, 2])
    relu = Joiner(6, 5)
    with torch.no_grad():
        assert torch.equal(relu(source, lengths, target, lengths)[0], _readable_join(relu, source, target))
    tanh = Joiner(6, 5, activation="tanh")
    logits = tanh(source.requires_grad_(), lengths, target, lengths)[0]
    assert "ReluJoin" not in type(logits.grad_fn).__name__
    assert torch.equal(logits, _readable_join(tanh, source, target))
