"""emformer_edu.dropout: F.dropout bit for bit, and inside global_batch the global batch's mask, row by row."""
import dataclasses

import pytest
import torch

from emformer_edu import EmformerRNNTConfig, emformer_rnnt_model
from emformer_edu.dropout import Dropout, dropout, global_batch


def _draw(x, seed, **kwargs):
    torch.manual_seed(seed)
    out = dropout(x, 0.3, True, **kwargs)
    return out, torch.rand(1)  # and where the random stream stands after it


@pytest.mark.parametrize("layout", ["(T, B, D)", "(B, T, D) transposed", "permuted"])
def test_outside_global_batch_it_is_f_dropout_and_inside_the_whole_batch_too(layout):
    x = {"(T, B, D)": torch.randn(7, 6, 5), "(B, T, D) transposed": torch.randn(6, 7, 5).transpose(0, 1),
         "permuted": torch.randn(5, 7, 6).permute(1, 2, 0)}[layout]
    torch.manual_seed(3)
    reference, after = torch.nn.functional.dropout(x, 0.3, True), torch.rand(1)
    plain, plain_after = _draw(x, 3)
    with global_batch(6, torch.arange(6)):
        whole, whole_after = _draw(x, 3)
    assert torch.equal(plain, reference) and torch.equal(whole, reference)
    assert torch.equal(after, plain_after) and torch.equal(after, whole_after)
    assert (reference == 0).any() and (reference != 0).any()


def test_a_shard_gets_its_rows_of_the_global_mask_and_a_phantom_keeps_everything():
    x = torch.randn(7, 6, 5)
    torch.manual_seed(3)
    reference = torch.nn.functional.dropout(x, 0.3, True)
    shard = torch.cat([x[:, [4, 1]], torch.ones(7, 1, 5)], dim=1)  # rows 4 and 1, then a phantom
    with global_batch(6, torch.tensor([4, 1, -1])):
        out, _ = _draw(shard, 3)
    assert torch.equal(out[:, :2], reference[:, [4, 1]]) and torch.equal(out[:, 2], shard[:, 2])
    # Attention probabilities (B * H, Q, K): utterance b owns rows b * H .. b * H + H - 1.
    probs = torch.rand(6 * 2, 4, 4)
    torch.manual_seed(5)
    reference = torch.nn.functional.dropout(probs, 0.3, True)
    with global_batch(6, torch.tensor([2, 3])):
        out, _ = _draw(probs[4:8], 5, batch_dim=0, heads=2)
    assert torch.equal(out, reference[4:8])


def test_eval_mode_zero_and_one_are_untouched_and_bad_rows_are_refused():
    x = torch.randn(3, 2, 4)
    with global_batch(4, torch.tensor([0, 1])):
        assert torch.equal(dropout(x, 0.3, False), x) and torch.equal(dropout(x, 0.0, True), x)
        assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))
        with pytest.raises(ValueError, match="holds 2 utterances"):
            dropout(torch.randn(3, 3, 4), 0.3, True)
    for positions in ([], [4], [-2], [[0]]):
        with pytest.raises(ValueError, match="positions"):
            with global_batch(4, torch.tensor(positions, dtype=torch.int64)):
                pass


def test_the_model_keeps_torchaudios_modules_and_keys():
    """Dropout is a torch.nn.Dropout without parameters: the state_dict and the printed modules are torchaudio's."""
    torchaudio = pytest.importorskip("torchaudio")
    cfg = EmformerRNNTConfig.tiny()
    ours, theirs = emformer_rnnt_model(**dataclasses.asdict(cfg)), torchaudio.models.emformer_rnnt_model(
        **dataclasses.asdict(cfg))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    drops = [m for m in ours.modules() if isinstance(m, Dropout)]
    assert drops and all(isinstance(m, torch.nn.Dropout) and repr(m).startswith("Dropout(p=") for m in drops)
