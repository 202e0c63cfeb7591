"""The joiner's training path, a few utterances at a time: same numbers, far less memory traffic.

The readable :class:`~.joiner.Joiner` builds the whole joint tensor ``(B, T, U, D)`` (16 MB for
the toy model's training batch), and autograd adds more of that size in the backward pass (the
gradient of the joint, then of the ReLU). Tensors that big live in main memory, so the joiner
spends its time moving data, not computing. Here each block of a few utterances is added, passed
through the ReLU and projected while it is still in the CPU cache, and the backward pass is
written out by hand:

    joint   = relu(source[b, :, None] + target[b, None, :])       (T, U, D) for utterance b
    logits  = joint @ W.T + bias                                   (T, U, V)
    d_joint = relu'(joint) * (d_logits @ W)
    d_source[b] = d_joint summed over U;   d_target[b] = d_joint summed over T
    d_W = d_logits.T @ joint;   d_bias = d_logits summed over (B, T, U)

Per element these are the operations autograd runs on the readable joiner, and ``d_W`` is one
matrix product over the stored joint as there, so the results are the same, to the bit on this
machine (``tests/test_fast_paths.py`` checks it). The :class:`~.joiner.Joiner` uses this path only
for a ReLU joiner when gradients are needed; inference runs the readable code.
"""
import torch

# Utterances per block: enough to keep the matrix products efficient, small enough (about 1 MB of
# joint per block) to stay in a core's cache.
BLOCK_BYTES = 1 << 20


class ReluJoin(torch.autograd.Function):
    """``relu(source[:, :, None] + target[:, None]) @ weight.T + bias`` with a hand-written backward."""

    @staticmethod
    def forward(ctx, source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        (B, T, D), U, V = source.shape, target.size(1), weight.size(0)
        joint = source.new_empty(B, T, U, D)  # kept for d_W, as autograd keeps the ReLU output
        logits = source.new_empty(B, T, U, V)
        step = max(1, BLOCK_BYTES // max(1, T * U * D * source.element_size()))
        for b in range(0, B, step):
            block = joint[b:b + step]
            torch.add(source[b:b + step].unsqueeze(2), target[b:b + step].unsqueeze(1), out=block).relu_()
            torch.addmm(bias, block.view(-1, D), weight.t(), out=logits[b:b + step].view(-1, V))
        ctx.save_for_backward(joint, weight)
        ctx.step = step
        return logits

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_logits: torch.Tensor):
        joint, weight = ctx.saved_tensors
        (B, T, U, D), V = joint.shape, weight.size(0)
        d_logits = d_logits.contiguous()
        d_source, d_target = joint.new_empty(B, T, D), joint.new_empty(B, U, D)
        for b in range(0, B, ctx.step):
            block = joint[b:b + ctx.step]
            d_joint = torch.mm(d_logits[b:b + ctx.step].view(-1, V), weight).view(block.shape)
            # The ReLU's own backward kernel (what autograd calls): d_joint where joint > 0, else 0.
            d_joint = torch.ops.aten.threshold_backward(d_joint, block, 0)
            torch.sum(d_joint, dim=2, out=d_source[b:b + ctx.step])
            torch.sum(d_joint, dim=1, out=d_target[b:b + ctx.step])
        flat = d_logits.view(-1, V)
        return d_source, d_target, flat.t().mm(joint.view(-1, D)), flat.sum(0)


def relu_join(source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)``, ``(B, U, D)``, Linear ``weight (V, D)`` and ``bias (V,)`` -> logits ``(B, T, U, V)``."""
    return ReluJoin.apply(source.contiguous(), target.contiguous(), weight, bias)
