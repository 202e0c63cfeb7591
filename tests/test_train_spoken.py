"""Training on the spoken corpus: fresh items per step from DataLoader workers, the same batches with any number
of workers, resume at the right items, speed perturbation, CER/WER in the history, export and load of a spoken model."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import needs_espeak
from emformer_edu import EmformerRNNTConfig, SyntheticConfig, pretrained
from emformer_edu.data.speech import CHARACTERS, SpokenUtterance, character_vocabulary
from emformer_edu.data.spoken import SpokenConfig, SpokenDataset
from emformer_edu.data.synthetic import SyntheticSpeechDataset
from emformer_edu.train import (
    FeatureCollate, SpeedPerturbed, TrainConfig, TrainEvent, Trainer, change_speed, export_assets, load_checkpoint,
    main,
)
from emformer_edu.train.cli import _model_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every voice, the breathy variants included: data/espeak.py seeds eSpeak's rand(), so items are bit-exact.
STEADY = SpokenConfig()


def tiny_spoken_model(**overrides) -> EmformerRNNTConfig:
    """A streaming model over the 28 characters (+ blank) that takes milliseconds per step."""
    cfg = EmformerRNNTConfig.toy(29).replace(
        encoding_dim=24, segment_length=8, time_reduction_input_dim=8, transformer_num_heads=2,
        transformer_ffn_dim=32, transformer_num_layers=1, transformer_left_context_length=2,
        transformer_max_memory_size=2, symbol_embedding_dim=16)
    return cfg.replace(**overrides)


def spoken_config(**overrides) -> TrainConfig:
    kw = dict(corpus="spoken", steps=4, batch_size=4, lr=3e-3, warmup_steps=1, num_valid=3, stats_utterances=8,
              eval_every=0, num_workers=0)
    kw.update(overrides)
    return TrainConfig(**kw)


def weights_equal(a: Trainer, b: Trainer) -> None:
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name


# ----------------------------------------------------------------------------- without eSpeak
def test_speed_change_scales_waveform_and_spans():
    utt = SyntheticSpeechDataset(1, seed=0)[0]
    for factor in (0.9, 1.1):
        fast = change_speed(utt, factor)
        assert fast.waveform.numel() == pytest.approx(utt.waveform.numel() / factor, abs=2)
        assert torch.equal(fast.tokens, utt.tokens) and fast.text == utt.text
        scaled = (utt.alignment.start_sample.double() / factor).round().long()
        assert (fast.alignment.start_sample - scaled).abs().max() <= 1
        assert int(fast.alignment.end_sample.max()) <= fast.waveform.numel()
        assert fast.waveform.abs().max() <= 1
    assert change_speed(utt, 1.0) is utt
    with pytest.raises(ValueError, match="speed factor"):
        change_speed(utt, 3.0)


def test_speed_perturbed_factors_are_seeded_by_index():
    data = SyntheticSpeechDataset(40, seed=0)
    a, b, other = SpeedPerturbed(data, seed=0), SpeedPerturbed(data, seed=0), SpeedPerturbed(data, seed=1)
    factors = [a.factor(i) for i in range(40)]
    assert factors == [b.factor(i) for i in reversed(range(40))][::-1]  # any order
    assert factors != [other.factor(i) for i in range(40)]
    assert all(0.9 <= f <= 1.1 and round(f * 100) == pytest.approx(f * 100) for f in factors)
    assert len(set(factors)) > 5 and len(a) == 40
    assert torch.equal(a[3].waveform, change_speed(data[3], factors[3]).waveform)


def test_spoken_corpus_needs_spoken_settings():
    with pytest.raises(ValueError, match="takes a SpokenConfig"):
        Trainer(spoken_config(), tiny_spoken_model(), SyntheticConfig(), progress=False)


def test_cli_model_follows_the_corpus_vocabulary():
    assert _model_config(None, {}, "spoken").num_symbols == character_vocabulary().num_symbols == 29
    assert _model_config(None, {}).num_symbols == 21  # the synthetic corpus, as before


# ----------------------------------------------------------------------------- with eSpeak
@needs_espeak
def test_trainer_draws_fresh_items_and_validates_on_the_test_split():
    trainer = Trainer(spoken_config(speed_perturb=False), corpus_config=STEADY, progress=False)
    assert trainer.vocab == character_vocabulary() and trainer.model_config.num_symbols == 29  # default model
    assert isinstance(trainer.train_set, SpokenDataset) and trainer.train_set.split == "train"
    assert len(trainer.train_set) == 4 * 4  # steps * batch_size items, each used once
    assert trainer.valid_set.split == "test" and len(trainer.valid_set) == 3
    assert trainer.valid_set.voices == STEADY.test_voices
    # Step s trains on items [s B, (s + 1) B): the worker's batch equals the batch made here.
    collate = FeatureCollate(trainer.extractor)
    for step in (1, 2):
        got = trainer.batches.batch(step)
        want = collate([trainer.train_set[i] for i in range(4 * step, 4 * step + 4)])
        for g, w in zip(got, want):
            assert torch.equal(g, w)
    trainer.batches.close()


@needs_espeak
def test_a_few_steps_train_and_report_cer_and_wer():
    events = []
    trainer = Trainer(spoken_config(steps=3, eval_every=2, num_workers=1, spec_augment=True, speed_perturb=True),
                      tiny_spoken_model(), STEADY, callback=events.append, progress=False)
    history = trainer.fit()
    assert [h["step"] for h in history] == [2, 3]
    assert all(set(h) == {"step", "loss", "valid_loss", "ter", "cer", "wer", "elapsed_s"} for h in history)
    assert all(h["cer"] == pytest.approx(h["ter"]) and 0 <= h["wer"] and h["loss"] == h["loss"] for h in history)
    evals = [e for e in events if e.kind == "eval"]
    assert evals[-1].wer == history[-1]["wer"] and "CER" in evals[-1].summary() and "WER" in evals[-1].summary()
    assert events[-1].kind == "end" and events[-1].wer == history[-1]["wer"]
    assert TrainEvent("eval", 1, 2, 0.5, 1e-3, 0.25, 1.0).summary().count("TER") == 1  # synthetic: TER only
    result = trainer.evaluate(2)
    assert len(result.ref_texts) == 2 and all(set(t) <= set(CHARACTERS) for t in result.hyp_texts)
    assert result.ref_texts == [trainer.valid_set[i].text for i in range(2)]


@needs_espeak
def test_same_batches_with_any_number_of_workers():
    """Each item is a function of its index (speed factor of (seed, index)): 0, 1 or 2 workers train the same."""
    config = dict(steps=3, spec_augment=True, speed_perturb=True)
    runs = []
    for workers in (0, 1, 2):
        trainer = Trainer(spoken_config(num_workers=workers, **config), tiny_spoken_model(transformer_dropout=0.1),
                          STEADY, progress=False)
        trainer.fit()
        runs.append(trainer)
    for other in runs[1:]:
        weights_equal(runs[0], other)
        assert other.history[-1]["ter"] == runs[0].history[-1]["ter"]


@needs_espeak
def test_resume_continues_with_the_next_items(tmp_path):
    """2 steps + save + resume + 2 steps == 4 steps straight (workers, dropout, SpecAugment, speed perturbation)."""
    config = spoken_config(steps=4, num_workers=1, spec_augment=True, speed_perturb=True)
    model = tiny_spoken_model(transformer_dropout=0.1)
    straight = Trainer(config, model, STEADY, progress=False)
    straight.fit()
    first = Trainer(config, model, STEADY, progress=False)
    first.fit(steps=2)
    path = str(tmp_path / "ckpt.pt")
    first.save(path)
    blob = load_checkpoint(path)
    assert blob["train_config"]["corpus"] == "spoken" and "spoken_config" in blob and "synthetic_config" not in blob
    torch.manual_seed(123)  # disturb the global RNG: resume must restore it
    resumed = Trainer.resume(path, progress=False)
    assert resumed.corpus_config == STEADY and resumed.step == 2
    resumed.fit()
    weights_equal(straight, resumed)
    # The same held-out scores (the loss entry averages the losses of this fit call only).
    assert [resumed.history[-1][k] for k in ("step", "ter", "cer", "wer")] == \
        [straight.history[-1][k] for k in ("step", "ter", "cer", "wer")]
    with pytest.raises(ValueError, match="cannot switch"):
        Trainer.resume(path, progress=False, corpus="synthetic")


@needs_espeak
def test_export_and_load_a_spoken_model(tmp_path):
    trainer = Trainer(spoken_config(steps=2), tiny_spoken_model(), STEADY, progress=False)
    trainer.fit()
    paths = export_assets(trainer, str(tmp_path), name="spoken")
    assert sorted(os.listdir(tmp_path)) == ["spoken_config.json", "spoken_emformer_rnnt.pt", "spoken_global_stats.json"]
    cfg = json.loads((tmp_path / "spoken_config.json").read_text())
    assert cfg["corpus"] == "spoken" and "synthetic" not in cfg and cfg["training"]["history"] == trainer.history

    model = pretrained.load(paths["weights"], paths["stats"], paths["config"])
    weights_equal(trainer, model)
    assert model.corpus == "spoken" and model.spoken_config == STEADY and model.synthetic_config is None
    assert model.lexicon == STEADY.lexicon and "seven" in model.lexicon
    assert model.test_voices == STEADY.test_voices
    data = model.held_out(2, seed=5)
    assert isinstance(data, SpokenDataset) and data.split == "test" and data.voices == STEADY.test_voices
    utt = data[0]
    assert isinstance(utt, SpokenUtterance) and utt.speaker.name in model.test_voices
    for beam_width in (None, 2):
        for streaming in (False, True):
            text = model.recognize(utt.waveform, beam_width=beam_width, streaming=streaming)
            assert isinstance(text, str) and set(text) <= set(CHARACTERS)
    result = model.evaluate(2, beam_width=None, streaming=True, seed=5)
    assert result.ref_texts == [data[0].text, data[1].text] and result.cer == pytest.approx(result.ter)
    assert result.wer is not None

    cfg["corpus"] = "speech"
    (tmp_path / "spoken_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="corpus 'speech'"):
        pretrained.load(paths["weights"], paths["stats"], paths["config"])


@needs_espeak
def test_cli_spoken_smoke(tmp_path):
    """The smoke-test command: the default (toy-sized) model over characters, one DataLoader worker."""
    out = tmp_path / "sp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-m", "emformer_edu.train", "--corpus", "spoken", "--steps", "3", "--batch-size", "4",
         "--num-valid", "2", "--stats-utterances", "8", "--eval-every", "0", "--no-progress", "--threads", "1",
         "--out", str(out), "--export", str(tmp_path / "assets")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "held-out greedy CER" in res.stderr and "WER" in res.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [3] and "wer" in history[0]
    blob = load_checkpoint(str(out / "checkpoint.pt"))
    assert blob["model_config"]["num_symbols"] == 29 and blob["train_config"]["num_workers"] == 1
    assert (tmp_path / "assets" / "spoken_config.json").is_file()  # --name follows the corpus


@needs_espeak
def test_cli_resumes_a_spoken_run(tmp_path):
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(dataclasses.asdict(tiny_spoken_model())))
    common = ["--no-progress", "--out", str(tmp_path)]
    trainer = main(["--corpus", "spoken", "--steps", "2", "--batch-size", "2", "--num-valid", "1",
                    "--stats-utterances", "4", "--eval-every", "0", "--num-workers", "0", "--speed-perturb",
                    "--model-config", str(cfg), *common])
    assert trainer.config.corpus == "spoken" and trainer.config.speed_perturb and trainer.step == 2
    resumed = main(["--resume", str(tmp_path / "checkpoint.pt"), "--steps", "3", *common])
    assert resumed.step == 3 and resumed.config.corpus == "spoken" and resumed.config.speed_perturb
    assert isinstance(resumed.train_set, SpeedPerturbed) and isinstance(resumed.train_set.dataset, SpokenDataset)
