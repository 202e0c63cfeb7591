"""Chapter 06's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import torch


def time_reduction(x, stride):
    B, T, D = x.shape
    kept = (T // stride) * stride                      # drop the frames that do not fill a group
    return x[:, :kept].reshape(B, T // stride, stride * D)


def time_reduction_interleaved(x, stride):
    # Wrong: stacks feature by feature (f0 of every frame, then f1 ...) instead of frame after frame.
    B, T, D = x.shape
    kept = (T // stride) * stride
    return x[:, :kept].reshape(B, T // stride, stride, D).transpose(2, 3).reshape(B, T // stride, stride * D)


def joiner(f, g, weight, bias):
    joint = f[:, :, None, :] + g[:, None, :, :]        # (B, T, U+1, D)
    return torch.relu(joint) @ weight.T + bias         # (B, T, U+1, V)


def joiner_no_relu(f, g, weight, bias):
    # Wrong: forgets the activation, so the joiner is linear and f and g only ever add their logits.
    return (f[:, :, None, :] + g[:, None, :, :]) @ weight.T + bias


ANSWERS = {
    "06.time_reduction": (time_reduction, time_reduction_interleaved),
    "06.joiner": (joiner, joiner_no_relu),
    "06.joint_shape": ((2, 50, 8, 29), (2, 50, 7, 29)),  # forgot that the space is a token
    "06.predictor_state_numbers": (3072, 1536),  # h only
}
