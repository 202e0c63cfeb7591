"""The shipped toy checkpoint: loads in one call, still recognizes held-out speech, streaming too."""
import json
import os
import random
import shutil

import pytest
import torch

import emformer_edu
from emformer_edu import pretrained
from emformer_edu.train.latency import compare_alignments
from emformer_edu.train.metrics import edit_distance, token_error_rate

ASSETS = os.path.join(os.path.dirname(emformer_edu.__file__), "train", "assets")
PATHS = {k: os.path.join(ASSETS, v.format(name="toy")) for k, v in pretrained.ASSET_FILES.items()}
NUM_HELD_OUT = 100  # ~ 640 tokens: one error moves the TER by ~0.16 points

@pytest.fixture(scope="module")
def toy():
    return pretrained.toy()


def test_assets_are_small_float32_and_complete(toy):
    assert os.path.getsize(PATHS["weights"]) <= 10 * 2**20
    state = torch.load(PATHS["weights"], weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    assert not toy.model.training
    cfg = toy.config["model"]
    # A real streaming configuration: memory, left context and look-ahead all on.
    assert cfg["transformer_max_memory_size"] >= 2 and cfg["transformer_left_context_length"] > 0
    assert cfg["right_context_length"] > 0 and toy.right_context_length == cfg["right_context_length"]
    assert toy.feature_extractor.right_padding == toy.right_context_length
    assert toy.vocab.num_symbols == cfg["num_symbols"] and toy.blank == cfg["num_symbols"] - 1
    assert toy.synthetic_config == emformer_edu.SyntheticConfig()  # trained on the default corpus
    assert toy.config["training"]["steps_done"] == toy.config["training"]["steps"]


def test_held_out_ter_full_context_and_streaming(toy):
    """Beam search (width 4) on utterances no training step saw: TER <= 5 %, streaming within 1 point."""
    full = toy.evaluate(NUM_HELD_OUT, beam_width=4)
    stream = toy.evaluate(NUM_HELD_OUT, beam_width=4, streaming=True)
    assert full.ter <= 0.05, full
    assert stream.ter <= 0.05, stream
    assert abs(full.ter - stream.ter) <= 0.01, (full, stream)


def test_torchaudio_style_streaming_loop(toy):
    """The loop a torchaudio user writes: transcribe_streaming chunks through RNNTBeamSearch.infer."""
    beam = toy.beam_search()
    data = toy.held_out(8, seed=pretrained.HELD_OUT_SEED + 1)
    refs, hyps = [], []
    for utt in data:
        state, hypos = None, None
        for chunk, length in toy.chunks(toy.features(utt.waveform)):
            hypos, state = beam.infer(chunk, length, 4, state=state, hypothesis=hypos)
        refs.append(utt.tokens.tolist())
        hyps.append(hypos[0].tokens[1:])  # tokens[0] is the blank that seeded the predictor
    assert token_error_rate(refs, hyps) <= 0.05


def test_recognize_text(toy):
    utt = toy.held_out(3)[2]
    assert toy.recognize(utt.waveform) == utt.text
    assert toy.recognize(utt.waveform, streaming=True) == utt.text
    assert edit_distance(toy.recognize(utt.waveform, beam_width=None), utt.text) <= 1
    assert edit_distance(toy.recognize(utt.waveform, beam_width=None, streaming=True), utt.text) <= 1


def test_toy_is_a_synthetic_model_without_words(toy):
    """The toy files predate the "corpus" entry: a config without it is a synthetic one."""
    assert "corpus" not in toy.config and toy.corpus == "synthetic"
    assert toy.spoken_config is None and toy.lexicon is None and toy.test_voices is None
    assert isinstance(toy.held_out(2), emformer_edu.SyntheticSpeechDataset)
    assert toy.evaluate(4, beam_width=None).wer is None  # no words in tone sequences


def test_learned_alignment_matches_the_generator(toy):
    """Forced and greedy alignments put (almost) every token inside its true span, near its onset:
    within a segment the Emformer attends to all frames, so it can commit early."""
    data = toy.held_out(20)
    utts = [data[i] for i in range(20)]
    forced = compare_alignments(toy.model, utts, toy.feature_extractor, toy.blank, source="forced")
    assert forced.num_tokens == sum(len(u.tokens) for u in utts) and forced.skipped == 0
    greedy = compare_alignments(toy.model, utts, toy.feature_extractor, toy.blank, source="greedy")
    for d in (forced, greedy):
        assert d.fraction_inside >= 0.9, d.summary()
        assert -40 <= d.mean_start_delay_ms <= 120, d.summary()
        # A streaming recognizer waits for the rest of the segment plus the look-ahead.
        assert 0 < d.mean_latency_ms <= 10 * (toy.segment_length + toy.right_context_length), d.summary()


# ----------------------------------------------------------------------------- bad input
def test_loading_into_a_model_of_another_config_names_the_mismatch():
    cfg = json.load(open(PATHS["config"]))["model"]
    other = emformer_edu.emformer_rnnt_model(**{**cfg, "transformer_num_layers": cfg["transformer_num_layers"] + 1,
                                                "symbol_embedding_dim": 48})
    with pytest.raises(ValueError) as err:
        pretrained.load(PATHS["weights"], PATHS["stats"], PATHS["config"], model=other)
    msg = str(err.value)
    assert "transformer_num_layers" in msg and "symbol_embedding_dim" in msg
    assert "missing from" in msg and f"emformer_layers.{cfg['transformer_num_layers']}" in msg
    assert "predictor.embedding.weight" in msg and "shape mismatch" in msg


def test_config_file_that_does_not_fit_the_weights(tmp_path):
    cfg = json.load(open(PATHS["config"]))
    cfg["model"]["encoding_dim"] = 64
    bad = tmp_path / "toy_config.json"
    bad.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"encoding_dim|shape mismatch"):
        pretrained.load(PATHS["weights"], PATHS["stats"], str(bad))


def test_missing_asset_names_the_path(tmp_path):
    for key in ("weights", "stats", "config"):
        paths = dict(PATHS)
        paths[key] = str(tmp_path / f"gone_{key}")
        with pytest.raises(FileNotFoundError, match=f"gone_{key}"):
            pretrained.load(paths["weights"], paths["stats"], paths["config"])


def test_copied_assets_load_from_anywhere(tmp_path):
    for path in PATHS.values():
        shutil.copy(path, tmp_path)
    copy = {k: str(tmp_path / os.path.basename(v)) for k, v in PATHS.items()}
    bundle = pretrained.load(copy["weights"], copy["stats"], copy["config"])
    assert bundle.vocab.tokens == pretrained.toy().vocab.tokens


def _load_with(tmp_path, key, write):
    """pretrained.load with the asset ``key`` replaced by a file that ``write(path)`` makes."""
    paths = dict(PATHS)
    paths[key] = str(tmp_path / os.path.basename(PATHS[key]))
    write(paths[key])
    return pretrained.load(paths["weights"], paths["stats"], paths["config"])


def _random_bytes(path):
    with open(path, "wb") as f:  # for most such files torch.load's own error suggests weights_only=False
        f.write(bytes(random.Random(0).randrange(256) for _ in range(100)))


def _write(text):
    def write(path):
        with open(path, "w") as f:
            f.write(text)
    return write


@pytest.mark.parametrize("write, match", [
    (_random_bytes, "cannot be read as tensors"),
    (_write(""), "empty"),
    (lambda path: torch.save(torch.zeros(3, 4), path), r"single tensor of shape \(3, 4\), not a state_dict"),
    (lambda path: torch.save({"weight": [1.0, 2.0]}, path), "not a state_dict"),
], ids=["random-bytes", "empty", "a-tensor", "not-tensors"])
def test_corrupt_weights_file_is_named(tmp_path, write, match):
    with pytest.raises(ValueError, match=match) as err:
        _load_with(tmp_path, "weights", write)
    assert "toy_emformer_rnnt.pt" in str(err.value) and "model weights" in str(err.value)
    assert "weights_only" not in str(err.value)  # never advise unpickling arbitrary code


@pytest.mark.parametrize("text, match", [
    ('{"mean": [0.0, 1.0', "not valid JSON"),  # truncated
    ("", "not valid JSON"),
    ("[1, 2, 3]", "must hold a JSON object"),
    ('{"mean": [0.0]}', "global_stats.json layout"),
    ('{"mean": [0.0, 1.0], "invstddev": [1.0, 1.0]}', "2 mel bins, the model reads 80"),
    (json.dumps({"mean": [float("nan")] * 80, "invstddev": [1.0] * 80}), "finite"),
], ids=["truncated", "empty", "a-list", "missing-key", "wrong-F", "nan"])
def test_corrupt_stats_file_is_named(tmp_path, text, match):
    with pytest.raises(ValueError, match=match) as err:
        _load_with(tmp_path, "stats", _write(text))
    assert "toy_global_stats.json" in str(err.value) and "feature statistics" in str(err.value)


def test_corrupt_config_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="toy_config.json.*not valid JSON"):
        _load_with(tmp_path, "config", _write('{"model": {'))
    cfg = json.load(open(PATHS["config"]))
    del cfg["model"]["encoding_dim"]
    with pytest.raises(ValueError, match=r"toy_config.json.*missing \['encoding_dim'\]"):
        _load_with(tmp_path, "config", _write(json.dumps(cfg)))
