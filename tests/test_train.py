"""Training loop: loss goes down, checkpoints resume exactly, the command line works, bad input is named."""
import dataclasses
import json
import math
import os
import random
import subprocess
import sys

import pytest
import torch

from emformer_edu import EmformerRNNTConfig, pretrained
from emformer_edu.train import (
    FeatureSet, TrainConfig, TrainEvent, Trainer, export_assets, load_checkpoint, main, prepend_blank,
    save_checkpoint, spec_augment, warmup_cosine,
)
from emformer_edu.train.checkpoints import load_weights
from emformer_edu.train.cli import build_parser, config_overrides

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**overrides):
    """The toy config shrunk to a model that takes milliseconds per step (memory, left and right context on)."""
    cfg = EmformerRNNTConfig.toy(21).replace(
        encoding_dim=24, segment_length=8, time_reduction_input_dim=8, transformer_num_heads=2,
        transformer_ffn_dim=32, transformer_num_layers=1, transformer_left_context_length=2,
        transformer_max_memory_size=2, symbol_embedding_dim=16)
    return cfg.replace(**overrides)


def tiny_train_config(**overrides):
    kw = dict(steps=4, batch_size=4, lr=3e-3, warmup_steps=1, num_train=16, num_valid=2, stats_utterances=8,
              eval_every=0)
    kw.update(overrides)
    return TrainConfig(**kw)


def test_loss_decreases_on_a_fixed_batch():
    trainer = Trainer(tiny_train_config(steps=25, num_train=8, batch_size=8, eval_every=0),
                      tiny_config(transformer_dropout=0.0), progress=False)
    batch = trainer.train_set.batch(range(8))
    with torch.no_grad():
        trainer.model.eval()
        before = float(trainer.loss(*batch))
    for _ in range(25):
        trainer.train_step()
    with torch.no_grad():
        trainer.model.eval()
        after = float(trainer.loss(*batch))
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("parts", [2, 3])
def test_length_buckets_give_the_whole_batch_gradient(parts):
    """Parts sorted by length, each padded only to its own longest utterance: the same loss and gradient when
    lengths are whole encoder frames (2 layers, so memory, left and right context all take part); close otherwise."""
    from emformer_edu.train import length_buckets
    trainer = Trainer(tiny_train_config(batch_size=8, num_train=8),
                      tiny_config(transformer_dropout=0.0, transformer_num_layers=2), progress=False)
    trainer.model.double()
    features, lengths, targets, target_lengths = trainer.train_set.batch(range(8))
    stride = trainer.model_config.time_reduction_stride
    whole = lengths - lengths % stride
    whole[0] = lengths.max()  # the longest stays as it is: the batch keeps its shape
    features = features.double().clone()
    for b, n in enumerate(whole.tolist()):
        features[b, n: features.size(1) - trainer.model_config.right_context_length] = 0.0

    def loss_and_grads(batch, k):
        trainer.model.zero_grad()
        pieces = list(length_buckets(*batch, k))
        assert sorted(int(n) for p in pieces for n in p[1]) == sorted(batch[1].tolist())
        if k > 1:  # the parts are trimmed: less padding than the batch
            assert sum(p[0].shape[0] * p[0].shape[1] for p in pieces) < batch[0].shape[0] * batch[0].shape[1]
        total = sum(trainer.loss(*p) * p[1].numel() / 8 for p in pieces)
        total.backward()
        return total.item(), [q.grad.clone() for q in trainer.model.parameters()]

    (loss_1, grads_1), (loss_k, grads_k) = (loss_and_grads((features, whole, targets, target_lengths), k)
                                            for k in (1, parts))
    assert loss_k == pytest.approx(loss_1, rel=1e-12)
    for a, b in zip(grads_1, grads_k):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # Lengths of any size: the longest of each part keeps its partial last frame, a small change.
    (loss_1, grads_1), (loss_k, grads_k) = (loss_and_grads((features, lengths, targets, target_lengths), k)
                                            for k in (1, parts))
    assert loss_k == pytest.approx(loss_1, rel=1e-3)
    flat = lambda grads: torch.cat([g.flatten() for g in grads])  # noqa: E731
    assert (flat(grads_k) - flat(grads_1)).norm() <= 0.05 * flat(grads_1).norm()


def test_train_step_with_length_buckets_matches_one_batch():
    runs = []
    for k in (1, 2):
        trainer = Trainer(tiny_train_config(batch_size=8, num_train=16, length_buckets=k),
                          tiny_config(transformer_dropout=0.0), progress=False)
        losses = [trainer.train_step() for _ in range(2)]
        runs.append((losses, torch.cat([p.detach().flatten() for p in trainer.model.parameters()])))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-3)
    moved = lambda w: w - torch.cat([p.detach().flatten() for p in Trainer(  # noqa: E731
        tiny_train_config(), tiny_config(), progress=False).model.parameters()])
    assert (moved(runs[1][1]) - moved(runs[0][1])).norm() <= 0.1 * moved(runs[0][1]).norm()


def test_prepend_blank_and_lengths_follow_torchaudio_recipe():
    targets = torch.tensor([[3, 4, 0], [5, 0, 0]], dtype=torch.int32)
    assert prepend_blank(targets, 20).tolist() == [[20, 3, 4, 0], [20, 5, 0, 0]]
    fs = FeatureSet.__new__(FeatureSet)
    fs.right_padding = 4
    fs.features = [torch.ones(10, 80), torch.ones(7, 80)]
    fs.tokens = [torch.tensor([1, 2], dtype=torch.int32), torch.tensor([3], dtype=torch.int32)]
    x, lengths, t, t_len = fs.batch([0, 1])
    assert x.shape == (2, 14, 80) and lengths.tolist() == [10, 7]  # lengths exclude the R frames
    assert not x[1, 7:].any() and not x[0, 10:].any()
    assert t.tolist() == [[1, 2], [3, 0]] and t_len.tolist() == [2, 1]


def test_spec_augment_masks_only_inside_lengths_and_is_seeded():
    x = torch.randn(2, 30, 80)
    original = x.clone()
    lengths = torch.tensor([20, 12])
    a = spec_augment(x, lengths, torch.Generator().manual_seed(1), 2, 10, 2, 4)
    b = spec_augment(x, lengths, torch.Generator().manual_seed(1), 2, 10, 2, 4)
    assert torch.equal(a, b) and not torch.equal(a, x)
    changed = a != x
    assert (a[changed] == 0).all()  # masked to 0 = the mean of normalized features
    # Time masks stay inside each utterance: a frame is masked across all bins only there.
    whole_frames = changed.all(-1)
    assert not whole_frames[0, 20:].any() and not whole_frames[1, 12:].any()
    assert torch.equal(x, original)  # a new tensor: the input is untouched


def test_warmup_cosine_schedule():
    f = [warmup_cosine(s, 10, 100, 0.1) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(f[:10], f[1:10]))  # warm-up rises
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # then decays
    assert f[100] == pytest.approx(0.1)


@pytest.mark.parametrize("kw, match", [
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(train_seed=1, valid_seed=1), "must differ"),
    (dict(grad_clip=-1.0), "grad_clip"),
    (dict(corpus="speech"), "corpus must be one of"),
    (dict(num_workers=-1), "num_workers must be an integer >= 0"),
])
def test_train_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_model_config_must_fit_the_vocabulary():
    with pytest.raises(ValueError, match="num_symbols"):
        Trainer(tiny_train_config(), tiny_config(num_symbols=30), progress=False)


def test_checkpoint_resume_reproduces_training(tmp_path):
    """2 steps + save + resume + 2 steps == 4 steps straight, bit for bit (dropout and SpecAugment on)."""
    config = tiny_train_config(steps=4, spec_augment=True)
    model_config = tiny_config(transformer_dropout=0.1)
    straight = Trainer(config, model_config, progress=False)
    straight.fit()

    first = Trainer(config, model_config, progress=False)
    first.fit(steps=2)
    path = str(tmp_path / "ckpt.pt")
    first.save(path)
    torch.manual_seed(123)  # disturb the global RNG: resume must restore it
    resumed = Trainer.resume(path, progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 4
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()
    # fit(steps=2) evaluated at its end too; the final evaluations agree.
    assert [h["step"] for h in resumed.history] == [2, 4]
    assert resumed.history[-1]["ter"] == straight.history[-1]["ter"]


def test_callback_gets_events_and_no_progress_writes_nothing(capsys):
    events = []
    trainer = Trainer(tiny_train_config(steps=3, eval_every=2), tiny_config(), callback=events.append, progress=False)
    trainer.fit()
    kinds = [e.kind for e in events]
    assert kinds == ["step", "step", "eval", "step", "eval", "end"]
    assert all(isinstance(e, TrainEvent) and e.total_steps == 3 for e in events)
    assert events[2].ter is not None and events[0].ter is None
    assert [h["step"] for h in trainer.history] == [2, 3]
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""


def test_fit_cannot_run_past_the_schedule():
    trainer = Trainer(tiny_train_config(steps=2), tiny_config(), progress=False)
    with pytest.raises(ValueError, match="beyond config.steps"):
        trainer.fit(steps=3)


# ----------------------------------------------------------------------------- bad checkpoints
def test_resume_from_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "nowhere" / "ckpt.pt")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Trainer.resume(path)


def test_resume_from_a_file_that_is_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not an emformer_edu training checkpoint"):
        load_checkpoint(str(other))


def test_corrupt_checkpoint_is_named_and_never_suggests_weights_only_false(tmp_path):
    """Random bytes make torch.load suggest weights_only=False, i.e. running code from a broken file: never pass that on."""
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(100)))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (noise, empty):
        with pytest.raises(ValueError, match=path.name) as err:
            load_checkpoint(str(path))
        assert "weights_only" not in str(err.value)


def test_save_checkpoint_is_atomic(tmp_path):
    path = tmp_path / "deep" / "ckpt.pt"
    save_checkpoint(str(path), {"format": "x"})
    assert torch.load(str(path), weights_only=True) == {"format": "x"}
    assert os.listdir(path.parent) == ["ckpt.pt"]  # the temporary file was renamed, not left behind


def test_loading_weights_of_another_config_names_keys_and_shapes(tmp_path):
    small = Trainer(tiny_train_config(), tiny_config(), progress=False)
    path = str(tmp_path / "ckpt.pt")
    small.save(path)
    blob = load_checkpoint(path)
    other = Trainer(tiny_train_config(), tiny_config(encoding_dim=32, transformer_num_layers=2), progress=False)
    with pytest.raises(ValueError) as err:
        load_weights(other.model, blob["model"], source="ckpt.pt", config=blob["model_config"])
    msg = str(err.value)
    assert "encoding_dim: ckpt.pt 24 vs model 32" in msg
    assert "transformer_num_layers" in msg
    assert "missing from ckpt.pt" in msg and "transformer.emformer_layers.1" in msg
    assert "shape mismatch" in msg and "(32, 32) vs model" not in msg and "(24," in msg


# ----------------------------------------------------------------------------- command line
def _run(*args, cwd=REPO):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "emformer_edu.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_help():
    res = _run("--help")
    assert res.returncode == 0, res.stderr
    for flag in ("--steps", "--resume", "--export", "--spec-augment", "--no-progress", "--eval-every"):
        assert flag in res.stdout
    for flag in ("--out", "--batch-size", "--num-train", "--seed", "--threads"):
        assert flag in res.stdout


def _other_value(field):
    """A valid non-default value of a TrainConfig field (bools flip, the corpus switches)."""
    if field.type is bool:
        return not field.default
    if field.type is str:
        return {"corpus": "spoken"}[field.name]
    return field.default + 3 if field.type is int else field.default / 2


@pytest.mark.parametrize("field", dataclasses.fields(TrainConfig), ids=lambda f: f.name)
def test_every_train_config_field_is_a_cli_option(field):
    """A new TrainConfig field gets its option (with help) without touching the parser; the value reaches the config."""
    assert field.metadata.get("help"), f"TrainConfig.{field.name} has no metadata['help'] for --help"
    flag = "--" + field.name.replace("_", "-")
    value = _other_value(field)
    if field.type is bool:
        argv = [flag if value else "--no-" + flag[2:]]
    else:
        argv = [flag, str(value)]
    args = build_parser().parse_args(argv)
    assert config_overrides(args) == {field.name: value}
    assert getattr(TrainConfig(**config_overrides(args)), field.name) == value


def test_cli_values_reach_the_train_config_and_only_given_ones():
    args = build_parser().parse_args(["--lr", "0.01", "--spec-augment", "--eval-every", "7", "--out", "x"])
    assert config_overrides(args) == dict(lr=0.01, spec_augment=True, eval_every=7)  # not --out, not defaults
    assert TrainConfig(**config_overrides(args)) == TrainConfig(lr=0.01, spec_augment=True, eval_every=7)
    assert config_overrides(build_parser().parse_args([])) == {}  # no option: the dataclass defaults


@pytest.mark.parametrize("field", dataclasses.fields(EmformerRNNTConfig), ids=lambda f: f.name)
def test_every_model_config_field_is_a_cli_option(field):
    """The model's options are generated from EmformerRNNTConfig too, shown with the toy preset's defaults."""
    toy = EmformerRNNTConfig.toy()
    flag = "--" + field.name.replace("_", "-")
    assert flag in build_parser().format_help()
    value = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v / 2, str: lambda v: v}.get(
        field.type, lambda v: None)(getattr(toy, field.name))
    argv = ([flag if value else "--no-" + flag[2:]] if field.type is bool else [flag, "none" if value is None else str(value)])
    assert config_overrides(build_parser().parse_args(argv), EmformerRNNTConfig) == {field.name: value}


def test_cli_model_options_reach_the_model(tmp_path):
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    trainer = main(["--steps", "1", "--num-train", "4", "--num-valid", "1", "--batch-size", "2", "--eval-every", "0",
                    "--model-config", str(cfg), "--transformer-num-layers", "2", "--no-lstm-layer-norm",
                    "--transformer-weight-init-scale-strategy", "none", "--out", str(tmp_path), "--no-progress"])
    assert trainer.model_config == tiny_config(transformer_num_layers=2, lstm_layer_norm=False,
                                               transformer_weight_init_scale_strategy=None)
    assert len(trainer.model.transcriber.transformer.emformer_layers) == 2
    with pytest.raises(SystemExit):  # a resumed model keeps its checkpoint's config
        main(["--resume", str(tmp_path / "checkpoint.pt"), "--transformer-num-layers", "3", "--out", str(tmp_path)])


def test_cli_refuses_a_bad_value_with_the_reason(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--steps", "0", "--no-progress"])
    assert exit_.value.code == 2
    assert "steps must be an integer >= 1" in capsys.readouterr().err


def test_cli_trains_two_steps_exports_and_resumes(tmp_path):
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    out, assets = tmp_path / "run", tmp_path / "assets"
    common = ["--no-progress", "--threads", "1"]
    res = _run("--steps", "2", "--num-train", "8", "--num-valid", "2", "--batch-size", "4", "--eval-every", "0",
               "--model-config", str(cfg), "--out", str(out), "--export", str(assets), *common)
    assert res.returncode == 0, res.stderr
    assert "held-out greedy TER" in res.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [2]
    blob = load_checkpoint(str(out / "checkpoint.pt"))
    assert blob["step"] == 2 and "model" in blob
    assert blob["train_config"] == dataclasses.asdict(
        TrainConfig(steps=2, num_train=8, num_valid=2, batch_size=4, eval_every=0))
    assert blob["model_config"] == dataclasses.asdict(tiny_config())
    for name in ("toy_emformer_rnnt.pt", "toy_global_stats.json", "toy_config.json"):
        assert (assets / name).is_file()

    res = _run("--resume", str(out / "checkpoint.pt"), "--steps", "3", "--eval-every", "1", "--out", str(out), *common)
    assert res.returncode == 0, res.stderr
    blob = load_checkpoint(str(out / "checkpoint.pt"))
    assert blob["step"] == 3
    assert blob["train_config"]["eval_every"] == 1 and blob["train_config"]["num_train"] == 8  # given vs kept

    with pytest.raises(FileNotFoundError, match="missing.pt"):
        main(["--resume", str(tmp_path / "missing.pt"), "--out", str(out), *common])


def test_main_in_process_and_export_loads(tmp_path):
    """main() returns the trainer; the exported files load with emformer_edu.pretrained.load."""
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    trainer = main(["--steps", "1", "--num-train", "4", "--num-valid", "1", "--batch-size", "2", "--eval-every", "0",
                    "--model-config", str(cfg), "--out", str(tmp_path), "--no-progress"])
    assert (trainer.config.steps, trainer.config.num_train, trainer.config.batch_size) == (1, 4, 2)
    assert trainer.model_config == tiny_config()
    paths = export_assets(trainer, str(tmp_path / "assets"), name="tiny")
    bundle = pretrained.load(paths["weights"], paths["stats"], paths["config"])
    assert not bundle.model.training
    for (name, a), b in zip(trainer.model.state_dict().items(), bundle.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(bundle.feature_extractor.mean, trainer.extractor.mean)


def test_widget_progress_follows_events():
    pytest.importorskip("ipywidgets")
    from emformer_edu.teaching.widgets import WidgetProgress

    progress = WidgetProgress(display=False)
    progress(TrainEvent("step", 10, 40, 1.5, 1e-3, None, 2.0))
    assert (progress.bar.value, progress.bar.max) == (10, 40)
    progress(TrainEvent("eval", 20, 40, 0.5, 1e-3, 0.125, 4.0))
    assert progress.bar.value == 20 and "TER 12.5%" in progress.label.value


def test_evaluations_record_the_held_out_loss():
    """The held-out loss is the training loss's quantity on unseen utterances, in eval mode, recorded per evaluation."""
    events = []
    trainer = Trainer(tiny_train_config(steps=2, eval_every=1), tiny_config(), callback=events.append, progress=False)
    trainer.fit()
    losses = [h["valid_loss"] for h in trainer.history]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
    assert trainer.history[-1]["valid_loss"] == pytest.approx(trainer.held_out_loss(), rel=1e-6)
    assert events[-1].kind == "end" and events[-1].valid_loss == losses[-1]
    assert "held-out loss" in events[-1].summary()
    # One batch or many: the same mean per utterance.
    assert trainer.held_out_loss(batch_size=3) == pytest.approx(losses[-1], rel=1e-5)
    assert trainer.model.training


def test_fastemit_changes_the_gradient_not_the_loss():
    """TrainConfig.fastemit_lambda reaches rnnt_loss: the same loss value, a different step."""
    def one_step(lam):
        trainer = Trainer(tiny_train_config(steps=1, fastemit_lambda=lam), tiny_config(), progress=False)
        batch = trainer.batches.batch(0)
        value = float(trainer.loss(*batch).detach())
        trainer.train_step()
        return value, [p.detach().clone() for p in trainer.model.parameters()]
    (v0, w0), (v1, w1) = one_step(0.0), one_step(0.5)
    assert v0 == v1
    assert any(not torch.equal(a, b) for a, b in zip(w0, w1))
    with pytest.raises(ValueError, match="fastemit_lambda"):
        tiny_train_config(fastemit_lambda=-0.1)
