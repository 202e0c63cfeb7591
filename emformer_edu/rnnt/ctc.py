"""CTC through the transducer's joiner: an auxiliary loss that makes the encoder spell on its own.

CTC (Graves et al. 2006) scores a transcript from the encoder alone. At every encoder frame t a
softmax over the V symbols (blank included) gives ``P_t(k)``; an alignment emits at most one symbol
per frame (blanks between, repeats merged), and ``-log P(y | x)`` sums over all such alignments.
An RNN-T is CTC plus a predictor: its joiner reads ``enc[t] + pred[u]``. Take the predictor out,
and the joiner's own layers give CTC's per-frame logits::

    z[t] = W · act(enc[t]) + b        (B, T', V)    the joiner with pred = 0

so the auxiliary loss adds no parameter: the trained model is the same torchaudio model, with the
same ``state_dict`` keys, and nothing of CTC is exported.

Why train with it (as icefall's and NeMo's hybrid recipes do): an RNN-T's predictor learns the
lexicon's spellings, and greedy search leans on it. After an early wrong character it sits on a
prefix that no word has, and the joiner often says blank for the rest of the sentence. CTC's term
makes the encoder name the characters by itself, so the acoustics keep their say after such a
slip. The term is for training only: held-out losses, decoding and the accuracy tables are pure
RNN-T.

Shapes: B batch, T' encoder frames, U target length, V vocabulary (blank included), D model dim.
"""
import torch
import torch.nn.functional as F

__all__ = ["ctc_logits", "ctc_loss", "ctc_collapse", "ctc_greedy_decode"]


def ctc_logits(joiner: torch.nn.Module, source_encodings: torch.Tensor) -> torch.Tensor:
    """``(B, T', D)`` encoder output -> ``(B, T', V)`` logits: the joiner's activation and linear layer
    applied to the encoder alone (the predictor's term left out)."""
    return joiner.linear(joiner.activation(source_encodings))


def ctc_loss(joiner: torch.nn.Module, source_encodings: torch.Tensor, source_lengths: torch.Tensor,
             targets: torch.Tensor, target_lengths: torch.Tensor, blank: int) -> torch.Tensor:
    """Per-utterance CTC loss ``-log P(y | x)`` in nats, ``(B,)``, of the joiner-without-predictor logits.

    Args:
        joiner: the RNN-T's joiner (its ``linear`` and ``activation`` are used).
        source_encodings: ``(B, T', D)``; source_lengths: ``(B,)`` valid frames.
        targets: ``(B, U)`` token ids without blank (padding ignored); target_lengths: ``(B,)``.
        blank: blank index (the RNN-T's blank: the same symbol means "nothing here" in both).

    An utterance with more characters (plus one blank between each repeated pair) than frames has
    no CTC alignment; its loss is 0 with no gradient (``zero_infinity``) instead of inf. The RNN-T
    loss, which may emit several tokens per frame, still trains on it.
    """
    log_probs = F.log_softmax(ctc_logits(joiner, source_encodings), dim=-1)
    return F.ctc_loss(log_probs.transpose(0, 1), targets, source_lengths, target_lengths, blank=blank,
                      reduction="none", zero_infinity=True)


def ctc_collapse(frame_tokens, blank: int):
    """CTC's many-to-one map from one symbol per frame to a transcript: merge runs of the same symbol,
    then drop blanks (``a a - a b -`` -> ``a a b``: the blank between the a's keeps them apart)."""
    out, previous = [], None
    for k in frame_tokens:
        k = int(k)
        if k != previous and k != blank:
            out.append(k)
        previous = k
    return out


@torch.no_grad()
def ctc_greedy_decode(joiner: torch.nn.Module, source_encodings: torch.Tensor, source_lengths: torch.Tensor,
                      blank: int):
    """What the encoder says on its own: the best symbol of every frame (:func:`ctc_logits`), collapsed.
    ``(B, T', D)``, ``(B,)`` -> ``B`` token lists."""
    best = ctc_logits(joiner, source_encodings).argmax(-1)
    return [ctc_collapse(best[b, : int(source_lengths[b])].tolist(), blank) for b in range(best.size(0))]
