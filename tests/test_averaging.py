"""The weight average (ema_decay): its equation, what the trainer evaluates and exports, resume, bad input."""
import pytest
import torch

from emformer_edu.train import TrainConfig, Trainer, export_assets
from emformer_edu.train.averaging import WeightAverage
from emformer_edu.train.checkpoints import read_state_dict
from emformer_edu.train.pretrained import load_exported
from test_train import tiny_config, tiny_train_config  # test_train's tiny model and recipe


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.register_buffer("count", torch.tensor(0))


def test_the_average_is_the_decay_weighted_mean_of_the_weights_after_each_step():
    """average_n = sum_k decay^(n-k) w_k / sum_k decay^(n-k): the bias-corrected EMA, written as the mean it is."""
    torch.manual_seed(0)
    model, decay = Tiny(), 0.9
    average = WeightAverage(model, decay)
    seen = []
    for step in range(1, 5):
        with torch.no_grad():
            model.linear.weight.add_(torch.randn(2, 2))
            model.count.fill_(step)
        seen.append(model.linear.weight.detach().clone())
        average.update(model)
    n = len(seen)
    weights = [decay ** (n - k) for k in range(1, n + 1)]
    expected = sum(w * x for w, x in zip(weights, seen)) / sum(weights)
    got = average.average()
    assert torch.allclose(got["linear.weight"], expected, atol=1e-6)
    assert not torch.allclose(got["linear.weight"], seen[-1], atol=1e-3)  # an average, not the last weights
    assert int(got["count"]) == 4  # integer buffers: the latest value


def test_one_update_gives_the_weights_themselves_and_applied_restores_them():
    model = Tiny()
    average = WeightAverage(model, 0.999)
    average.update(model)  # bias correction: no pull toward the zero start
    assert torch.allclose(average.average()["linear.weight"], model.linear.weight)
    trained = model.linear.weight.detach().clone()
    average.moment["linear.weight"].add_(1.0)  # make the average differ from the weights
    with average.applied(model) as inside:
        assert inside is model and not torch.equal(model.linear.weight, trained)
    assert torch.equal(model.linear.weight, trained)


def test_no_average_before_the_first_step_and_bad_decays():
    with pytest.raises(ValueError, match="no update yet"):
        WeightAverage(Tiny(), 0.9).average()
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
            WeightAverage(Tiny(), bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), "0.999"])
def test_ema_decay_must_be_in_zero_one(bad):
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        TrainConfig(ema_decay=bad)


def test_the_trainer_evaluates_and_exports_the_average_and_steps_the_weights(tmp_path):
    """With ema_decay the optimizer's weights are those of a run without it (the average never feeds back);
    evaluation and export read the average."""
    plain = Trainer(tiny_train_config(steps=3), tiny_config(), progress=False)
    plain.fit()  # (each trainer seeds the global RNG when built: dropout draws from it during fit)
    averaged = Trainer(tiny_train_config(steps=3, ema_decay=0.5), tiny_config(), progress=False)
    averaged.fit()
    assert plain.average is None and averaged.average.updates == 3
    for a, b in zip(plain.model.state_dict().values(), averaged.model.state_dict().values()):
        assert torch.equal(a, b)
    mean = averaged.average.average()
    assert any(not torch.equal(mean[k], v) for k, v in averaged.model.state_dict().items())

    paths = export_assets(averaged, str(tmp_path), "toy")
    exported = read_state_dict(paths["weights"])
    assert all(torch.equal(exported[k], v) for k, v in mean.items())
    loaded = load_exported(str(tmp_path), "toy")
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in mean.items())

    # The held-out numbers of the history are the average's: the same as a plain trainer given its weights.
    plain.model.load_state_dict(mean)
    assert averaged.held_out_loss() == averaged.history[-1]["valid_loss"] == plain.held_out_loss()
    assert averaged.evaluate().ter == averaged.history[-1]["ter"] == plain.evaluate().ter
    trained = {k: v.clone() for k, v in averaged.model.state_dict().items()}
    averaged.evaluate()  # evaluating leaves the trained weights in the model
    assert all(torch.equal(trained[k], v) for k, v in averaged.model.state_dict().items())


def test_resume_carries_the_average(tmp_path):
    """2 steps + save + resume + 2 steps == 4 steps straight: the weights and their average."""
    config = tiny_train_config(steps=4, ema_decay=0.7)
    straight = Trainer(config, tiny_config(), progress=False)
    straight.fit()
    first = Trainer(config, tiny_config(), progress=False)
    first.fit(steps=2)
    path = str(tmp_path / "ckpt.pt")
    first.save(path)
    resumed = Trainer.resume(path, progress=False)
    assert resumed.average.updates == 2
    resumed.fit()
    for (name, a), b in zip(straight.average.average().items(), resumed.average.average().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="cannot change ema_decay"):
        Trainer.resume(path, progress=False, ema_decay=0.9)
