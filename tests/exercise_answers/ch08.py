"""Chapter 08's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug that the check must catch. ``greedy_one_token_per_frame`` is a second
wrong greedy decoder, tested in ``tests/test_ch08_decoding.py``.
"""
import torch


def greedy(model, enc_out, blank, max_symbols_per_frame):
    """At each frame: argmax of the joiner; a token is emitted and fed to the predictor, a blank moves on."""
    one = torch.tensor([1])
    g, _, state = model.predict(torch.tensor([[blank]]), one, None)  # the start symbol
    tokens = []
    for t in range(enc_out.shape[1]):
        for _ in range(max_symbols_per_frame):
            logits = model.join(enc_out[:, t : t + 1], one, g, one)[0]  # (1, 1, 1, V)
            k = int(logits[0, 0, 0].argmax())
            if k == blank:
                break
            tokens.append(k)
            g, _, state = model.predict(torch.tensor([[k]]), one, state)
    return tokens


def greedy_stale_state(model, enc_out, blank, max_symbols_per_frame):
    # Wrong: the predictor's output follows the new token, but its LSTM state is never updated, so every
    # prediction after the first token sees only the start symbol and the one last token.
    one = torch.tensor([1])
    g, _, state = model.predict(torch.tensor([[blank]]), one, None)
    tokens = []
    for t in range(enc_out.shape[1]):
        for _ in range(max_symbols_per_frame):
            logits = model.join(enc_out[:, t : t + 1], one, g, one)[0]
            k = int(logits[0, 0, 0].argmax())
            if k == blank:
                break
            tokens.append(k)
            g, _, _ = model.predict(torch.tensor([[k]]), one, state)
    return tokens


def greedy_one_token_per_frame(model, enc_out, blank, max_symbols_per_frame):
    # Wrong: moves to the next frame after every emission, as if a token consumed a frame (CTC-style),
    # so at most one token per frame, whatever max_symbols_per_frame says.
    one = torch.tensor([1])
    g, _, state = model.predict(torch.tensor([[blank]]), one, None)
    tokens = []
    for t in range(enc_out.shape[1]):
        logits = model.join(enc_out[:, t : t + 1], one, g, one)[0]
        k = int(logits[0, 0, 0].argmax())
        if k != blank:
            tokens.append(k)
            g, _, state = model.predict(torch.tensor([[k]]), one, state)
    return tokens


ANSWERS = {
    "08.greedy": (greedy, greedy_stale_state),
    "08.rank_first": ("qu", "k"),  # ranked by raw log P instead of log P / (len(tokens) + 1)
    "08.chunk": (2, 3),
}
