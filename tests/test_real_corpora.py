"""Real corpora on disk: a miniature LibriSpeech tree and TSV manifests, read with torchaudio's LibriSpeech walk and
soundfile, tokenized by characters or by a SentencePiece model trained on the transcripts, trained through the
command line, resumed, exported; and the clear errors for a missing or malformed corpus.

The LibriSpeech tree is made here: eSpeak NG sentences (``emformer_edu.speak``) written as 16-bit FLAC files in
``LibriSpeech/<subset>/<speaker>/<chapter>/`` with upper-case ``<speaker>-<chapter>.trans.txt`` transcripts.
"""
import dataclasses
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from conftest import _espeak_available
from emformer_edu import EmformerRNNTConfig, pretrained, speak
from emformer_edu.data.features import FeatureExtractor, compute_global_stats
from emformer_edu.data.librispeech import LibriSpeechConfig, read_librispeech
from emformer_edu.data.manifest import ManifestConfig, read_manifest
from emformer_edu.data.recordings import RecordedSpeech, RecordedUtterance
from emformer_edu.data.sentencepiece_vocab import SentencePieceVocabulary
from emformer_edu.data.speech import character_vocabulary
from emformer_edu.train import (
    FeatureCollate, TrainConfig, Trainer, batch_indices, export_assets, load_checkpoint, main,
)
from emformer_edu.train.corpora import ShuffledBatches, train_tokenizer
from emformer_edu.train.distributed import DistEnv

TEXTS = ["big black cat", "blue boat again", "bring bread back", "call a doctor", "clean cup", "cold coffee",
         "dark cloud above", "baby bird", "brown box", "city bus", "bright day", "buy an apple", "i can't cry",
         "boy and ball", "bad bed", "big bridge"]
TRAIN = {(19, 198): 3, (19, 227): 3, (26, 495): 3, (26, 496): 3}  # (speaker, chapter): utterances
DEV = {(84, 121): 2, (174, 168): 2}
PIECES = 40  # SentencePiece vocabulary size the 12 training transcripts allow (at most about 50)


def tiny_model(num_symbols: int) -> EmformerRNNTConfig:
    """test_train_spoken's tiny streaming model (milliseconds per step), dropout off."""
    return EmformerRNNTConfig.toy(num_symbols).replace(
        encoding_dim=24, segment_length=8, time_reduction_input_dim=8, transformer_num_heads=2,
        transformer_ffn_dim=32, transformer_num_layers=1, transformer_left_context_length=2,
        transformer_max_memory_size=2, symbol_embedding_dim=16, transformer_dropout=0.0)


def write_flac(path, waveform, rate=16000) -> None:
    soundfile.write(str(path), np.asarray(waveform, dtype=np.float32), rate, format="FLAC", subtype="PCM_16")


def write_subset(root, subset, chapters, texts, seed=0):
    """``LibriSpeech/<subset>/<speaker>/<chapter>/`` with eSpeak audio and upper-case transcripts; returns
    ``{utterance id: (text, waveform)}``."""
    made, k = {}, 0
    for (speaker, chapter), count in chapters.items():
        folder = root / "LibriSpeech" / subset / str(speaker) / str(chapter)
        folder.mkdir(parents=True)
        lines = []
        for u in range(count):
            text = texts[k % len(texts)]
            uid = f"{speaker}-{chapter}-{u:04d}"
            waveform = speak(text, seed=seed + k).waveform
            write_flac(folder / f"{uid}.flac", waveform)
            lines.append(f"{uid} {text.upper()}")
            made[uid] = (text, waveform)
            k += 1
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return made


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    """A miniature LibriSpeech: train-clean-100 (2 speakers x 2 chapters x 3) and dev-clean (2 x 1 x 2)."""
    if not _espeak_available():
        pytest.skip("eSpeak NG not installed (pip install espeakng-loader)")
    root = tmp_path_factory.mktemp("corpora")
    train = write_subset(root, "train-clean-100", TRAIN, TEXTS)
    dev = write_subset(root, "dev-clean", DEV, TEXTS[12:], seed=100)
    return root, train, dev


def tone_tree(root, subset="train-clean-100", lines=("1-2-0000 HELLO THERE",), rate=16000, audio=("1-2-0000",)):
    """A LibriSpeech-shaped tree without eSpeak: chapter 1/2 with the given transcript lines and tone files."""
    folder = root / "LibriSpeech" / subset / "1" / "2"
    folder.mkdir(parents=True, exist_ok=True)
    for uid in audio:
        write_flac(folder / f"{uid}.flac", 0.1 * np.sin(np.arange(rate // 2) * 0.05), rate)
    (folder / "1-2.trans.txt").write_text("".join(line + "\n" for line in lines))
    return folder


# ----------------------------------------------------------------------------- LibriSpeech
def test_librispeech_follows_torchaudios_walk_and_decodes_the_flac(librispeech):
    root, train, dev = librispeech
    recordings = read_librispeech(str(root), ["train-clean-100"])
    ids = [os.path.basename(r.path)[:-5] for r in recordings]
    assert ids == sorted(train) and len(ids) == 12  # torchaudio's order: sorted file ids
    assert [r.text for r in recordings] == [train[i][0] for i in ids]  # lower case again
    assert [r.speaker for r in recordings] == [int(i.split("-")[0]) for i in ids]
    assert recordings[4].source.endswith("19-227.trans.txt:2")
    both = read_librispeech(str(root), ["train-clean-100", "dev-clean"])
    assert len(both) == 16 and [r.text for r in both[12:]] == [dev[i][0] for i in sorted(dev)]  # "174-..." < "84-..."

    data = RecordedSpeech(recordings, character_vocabulary(), resample=False, name="LibriSpeech")
    utt = data[4]
    text, waveform = train[ids[4]]
    assert isinstance(utt, RecordedUtterance) and utt.alignment is None and utt.sample_rate == 16000
    assert utt.waveform.dtype == torch.float32 and utt.waveform.shape == waveform.shape
    assert (utt.waveform - waveform).abs().max() <= 1 / 32768 + 1e-6  # 16-bit FLAC: rounding only
    assert utt.tokens.tolist() == character_vocabulary().encode(text) and utt.text == text
    # FeatureCollate needs no alignment: a batch of recordings has the training layout.
    x, lengths, targets, target_lengths = FeatureCollate(FeatureExtractor())([data[0], data[1]])
    assert x.shape == (2, int(lengths.max()) + 4, 80) and target_lengths.tolist() == [len(train[i][0]) for i in ids[:2]]


def test_shuffled_batches_cover_each_epoch_and_shard_across_processes(librispeech):
    root, _, _ = librispeech
    config = TrainConfig(corpus="librispeech", steps=6, batch_size=4, num_valid=2, stats_utterances=4,
                         eval_every=0, num_workers=0)
    settings = LibriSpeechConfig(root=str(root))
    trainer = Trainer(config, tiny_model(29), settings, progress=False)
    assert isinstance(trainer.batches, ShuffledBatches) and len(trainer.train_set) == 12
    assert len(trainer.valid_set) == 2 and {r.path for r in trainer.valid_set.recordings} <= {
        r.path for r in read_librispeech(str(root), ["dev-clean"])}
    # Feature statistics: from stats_utterances recordings spread over the set (sorted by speaker), not the first.
    want = compute_global_stats(trainer.train_set[i].waveform for i in (0, 3, 6, 9))
    assert torch.allclose(trainer.extractor.mean, want.mean, atol=1e-5)
    assert torch.allclose(trainer.extractor.invstddev, want.invstddev, rtol=1e-4)
    epoch = [i for s in range(3) for i in trainer.batches.items(s)]
    assert sorted(epoch) == list(range(12))  # 3 steps of 4: every recording once per epoch
    assert [trainer.batches.items(s) for s in range(3, 6)] != [trainer.batches.items(s) for s in range(3)]  # reshuffled
    collate = FeatureCollate(trainer.extractor)
    whole = trainer.batches.batch(4)
    want = collate([trainer.train_set[i] for i in batch_indices(4, 12, 4, config.seed)])
    for got, w in zip(whole, want):
        assert torch.equal(got, w)
    # Two torchrun processes: rank r gets items 2r, 2r + 1 of the step's 4, the same as one process's.
    for rank in (0, 1):
        part = ShuffledBatches(trainer.train_set, trainer.extractor, config, DistEnv(rank, 2, rank)).batch(4)
        mine = collate([trainer.train_set[i] for i in batch_indices(4, 12, 4, config.seed)[2 * rank: 2 * rank + 2]])
        assert all(torch.equal(g, w) for g, w in zip(part, mine))
    # A DataLoader worker reads the same batch.
    worker = ShuffledBatches(trainer.train_set, trainer.extractor, dataclasses.replace(config, num_workers=1))
    assert all(torch.equal(g, w) for g, w in zip(worker.batch(4), whole))
    worker.close()
    trainer.batches.close()


def test_sentencepiece_run_through_the_cli_resumes_and_exports(librispeech, tmp_path):
    root, _, dev = librispeech
    model = tmp_path / "model.json"
    model.write_text(json.dumps(dataclasses.asdict(tiny_model(PIECES + 1))))
    out, assets = tmp_path / "run", tmp_path / "assets"
    common = ["--no-progress", "--threads", "1", "--out", str(out)]
    recipe = ["--corpus", "librispeech", "--root", str(root), "--train-subsets", "train-clean-100",
              "--valid-subsets", "dev-clean", "--tokenizer", "sentencepiece", "--sentencepiece-vocab-size", str(PIECES),
              "--steps", "4", "--batch-size", "4", "--num-valid", "3", "--stats-utterances", "6", "--eval-every", "0",
              "--num-workers", "1", "--speed-perturb"]
    first = main([*recipe, "--model-config", str(model), "--export", str(assets), *common])
    assert isinstance(first.vocab, SentencePieceVocabulary) and first.vocab.num_symbols == PIECES + 1
    assert first.vocab.decode(first.vocab.encode("big black cat")) == "big black cat"
    assert first.corpus_config == LibriSpeechConfig(str(root), "train-clean-100", "dev-clean",
                                                    tokenizer="sentencepiece", sentencepiece_vocab_size=PIECES)
    history = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in history] == [4] and {"ter", "cer", "wer"} <= set(history[0])
    assert history[0]["cer"] != history[0]["ter"]  # pieces, not characters: the TER is the piece error rate

    blob = load_checkpoint(str(out / "checkpoint.pt"))
    assert blob["sentencepiece_model"] == first.vocab.model_proto and blob["vocabulary"] == list(first.vocab.tokens)
    assert blob["librispeech_config"] == dataclasses.asdict(first.corpus_config)
    assert sorted(os.listdir(assets)) == ["librispeech_config.json", "librispeech_emformer_rnnt.pt",
                                          "librispeech_global_stats.json", "librispeech_spm.model"]
    config = json.loads((assets / "librispeech_config.json").read_text())
    assert config["tokenizer"] == {"kind": "sentencepiece", "model": "librispeech_spm.model"}
    assert config["corpus"] == "librispeech" and config["librispeech"]["root"] == str(root)
    assert config["vocabulary"] == list(SentencePieceVocabulary.from_file(assets / "librispeech_spm.model").tokens)
    assert config["model"]["num_symbols"] == PIECES + 1
    # The exported model's held-out utterances are its dev-clean recordings, tokenized by its pieces.
    loaded = pretrained.load_exported(str(assets), "librispeech")
    held = loaded.held_out(3, seed=1)
    assert len(held) == 3 and {u.text for u in held} <= {text for text, _ in dev.values()}
    assert [loaded.vocab.decode(u.tokens) for u in held] == [u.text for u in held]
    assert isinstance(loaded.recognize(held[0].waveform, beam_width=None, streaming=True), str)
    with pytest.raises(ValueError, match="spoken models only"):
        loaded.held_out(1, condition="clean, unseen voices")

    # Resume from a moved copy of the data (--root): the saved SentencePiece model, not a new one; the
    # same items and weights as 6 uninterrupted steps.
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    resumed = main(["--resume", str(out / "checkpoint.pt"), "--steps", "6", "--root", str(moved), *common])
    assert resumed.step == 6 and resumed.vocab.model_proto == first.vocab.model_proto
    assert resumed.corpus_config.root == str(moved) and resumed.train_set.dataset.recordings[0].path.startswith(
        str(moved))
    straight = Trainer(dataclasses.replace(first.config, steps=6), tiny_model(PIECES + 1), first.corpus_config,
                       progress=False)
    straight.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="cannot change it"):
        main(["--resume", str(out / "checkpoint.pt"), "--tokenizer", "characters", *common])
    # The saved model, even when the transcripts changed (a new one would differ).
    transcript = moved / "LibriSpeech" / "train-clean-100" / "19" / "198" / "19-198.trans.txt"
    transcript.write_text(transcript.read_text().replace("BIG BLACK CAT", "ZEBRA QUIZ JUMP"))
    again = Trainer.resume(str(out / "checkpoint.pt"), progress=False, corpus_overrides={"root": str(moved)})
    assert again.train_set.dataset.recordings[0].text == "zebra quiz jump"
    assert again.vocab.model_proto == first.vocab.model_proto
    assert train_tokenizer(again.train_set.dataset.texts, PIECES).model_proto != first.vocab.model_proto


def test_characters_are_the_default_and_export_has_no_tokenizer(librispeech, tmp_path):
    root, _, _ = librispeech
    trainer = Trainer(TrainConfig(corpus="librispeech", steps=1, batch_size=2, num_valid=2, stats_utterances=2,
                                  num_workers=0), tiny_model(29), LibriSpeechConfig(str(root)), progress=False)
    assert trainer.vocab == character_vocabulary()
    trainer.fit()
    assert set(trainer.history[-1]) >= {"cer", "wer"} and trainer.history[-1]["cer"] == trainer.history[-1]["ter"]
    paths = export_assets(trainer, str(tmp_path), name="chars")
    assert "tokenizer" not in paths and "tokenizer" not in json.loads(open(paths["config"]).read())
    loaded = pretrained.load(paths["weights"], paths["stats"], paths["config"])
    assert loaded.corpus == "librispeech" and loaded.corpus_config == trainer.corpus_config
    assert loaded.vocab.tokens == trainer.vocab.tokens
    # What a spawned DataLoader worker receives: the dataset pickled, SentencePiece vocabulary and all.
    pieces = train_tokenizer(trainer.train_set.texts, PIECES)
    data = RecordedSpeech(trainer.train_set.recordings, pieces, resample=False, name="LibriSpeech")
    copy = pickle.loads(pickle.dumps(data))
    assert copy[3].tokens.tolist() == data[3].tokens.tolist() == pieces.encode(data.recordings[3].text)


# ----------------------------------------------------------------------------- manifests
def test_manifest_reads_resamples_and_downmixes(tmp_path):
    rate = 8000
    t = np.arange(rate) / rate
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 220 * t)
    (tmp_path / "clips").mkdir()
    soundfile.write(str(tmp_path / "clips" / "mono.wav"), left.astype(np.float32), 16000, subtype="FLOAT")
    soundfile.write(str(tmp_path / "stereo.flac"), np.stack([left, right], 1).astype(np.float32), rate)
    manifest = tmp_path / "train.tsv"
    manifest.write_text(f"path\ttext\nclips/mono.wav\tHello  World\n\n{tmp_path / 'stereo.flac'}\tit's A test\n")
    recordings = read_manifest(str(manifest))
    assert [r.text for r in recordings] == ["hello world", "it's a test"]
    assert recordings[0].path == str(tmp_path / "clips" / "mono.wav") and recordings[1].source.endswith("train.tsv:4")
    data = RecordedSpeech(recordings, character_vocabulary())
    mono, stereo = data[0], data[1]
    assert torch.equal(mono.waveform, torch.tensor(left, dtype=torch.float32))  # 16 kHz float WAV: unchanged
    assert stereo.waveform.numel() == 2 * rate and stereo.speaker is None  # 8 kHz -> 16 kHz
    mixed = torch.tensor((left + right) / 2, dtype=torch.float32)  # channels averaged, then resampled
    want = torchaudio.functional.resample(mixed, rate, 16000)
    assert (stereo.waveform - want).abs().max() < 2e-4  # FLAC's 16 bits
    # Through the trainer: one step and a held-out evaluation with CER and WER.
    (tmp_path / "valid.tsv").write_text("clips/mono.wav\thello world\n")
    trainer = Trainer(TrainConfig(corpus="manifest", steps=1, batch_size=2, num_valid=5, stats_utterances=2,
                                  num_workers=0, speed_perturb=True), tiny_model(29),
                      ManifestConfig(str(manifest), str(tmp_path / "valid.tsv")), progress=False)
    trainer.fit()
    assert len(trainer.valid_set) == 1 and trainer.history[-1]["wer"] >= 0


# ----------------------------------------------------------------------------- clear errors
def test_missing_root_and_subset_say_what_to_extract_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="LibriSpeech root .*nowhere.* not found"):
        read_librispeech(str(tmp_path / "nowhere"), ["train-clean-100"])
    tone_tree(tmp_path, "dev-clean")
    with pytest.raises(FileNotFoundError, match=r"subset 'train-clean-100' not found.*subsets there: dev-clean.*"
                                                r"train-clean-100\.tar\.gz.*never downloads"):
        read_librispeech(str(tmp_path), ["train-clean-100"])
    (tmp_path / "LibriSpeech" / "dev-other").mkdir()
    with pytest.raises(ValueError, match=r"dev-other' holds no SPEAKER/CHAPTER/\*\.flac files"):
        read_librispeech(str(tmp_path), ["dev-other"])
    with pytest.raises(ValueError, match="needs its root"):
        read_librispeech(None, ["dev-clean"])
    with pytest.raises(ValueError, match="train_subsets must be comma-separated LibriSpeech subsets"):
        LibriSpeechConfig(str(tmp_path), train_subsets="train-clean-101")
    with pytest.raises(ValueError, match="both the training and the held-out"):
        LibriSpeechConfig(str(tmp_path), train_subsets="dev-clean,train-clean-100", valid_subsets="dev-clean")


@pytest.mark.parametrize("lines, audio, error, match", [
    (("1-2-0000 HELLO", "1-2-0001"), ("1-2-0000", "1-2-0001"), ValueError, r"1-2\.trans\.txt:2: expected"),
    (("1-2-0000 HELLO", "1-2-0001 THERE"), ("1-2-0000",), FileNotFoundError,
     r"1-2\.trans\.txt:2: the audio file .*1-2-0001\.flac.* is missing"),
    (("1-2-0000 HELLO",), ("1-2-0000", "1-2-0001"), ValueError, r"1-2-0001\.flac has no transcript"),
    (("1-2-0000 HELLO 7",), ("1-2-0000",), ValueError, r"1-2\.trans\.txt:1: the transcript 'hello 7' has characters "
                                                        r"\['7'\]"),
])
def test_malformed_transcripts_name_file_and_line(tmp_path, lines, audio, error, match):
    tone_tree(tmp_path, lines=lines, audio=audio)
    with pytest.raises(error, match=match):
        RecordedSpeech(read_librispeech(str(tmp_path), ["train-clean-100"]), character_vocabulary())


def test_wrong_sample_rate_is_refused_for_librispeech(tmp_path):
    tone_tree(tmp_path, rate=8000)
    data = RecordedSpeech(read_librispeech(str(tmp_path), ["train-clean-100"]), character_vocabulary(),
                          resample=False, name="LibriSpeech")
    with pytest.raises(ValueError, match=r"1-2-0000\.flac' is 8000 Hz, but LibriSpeech's files are 16000 Hz"):
        data[0]


def test_manifest_errors_name_the_line(tmp_path):
    write_flac(tmp_path / "a.flac", np.zeros(800))
    cases = {"empty.tsv": ("\n\n", ValueError, "lists no recordings"),
             "tabs.tsv": ("a.flac\thello\na.flac hello\n", ValueError, r"tabs\.tsv:2: expected 'path<TAB>text'"),
             "notext.tsv": ("a.flac\t \n", ValueError, r"notext\.tsv:1: expected"),
             "gone.tsv": ("a.flac\thi\nb.flac\tthere\n", FileNotFoundError, r"gone\.tsv:2: audio file .*b\.flac")}
    for name, (text, error, match) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(error, match=match):
            read_manifest(str(tmp_path / name))
    with pytest.raises(FileNotFoundError, match="manifest .*missing.tsv.* not found"):
        read_manifest(str(tmp_path / "missing.tsv"))
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "odd.tsv").write_text("text.wav\thello\n")
    with pytest.raises(ValueError, match=r"text\.wav' \(.*odd\.tsv:1\) cannot be decoded by soundfile"):
        RecordedSpeech(read_manifest(str(tmp_path / "odd.tsv")), character_vocabulary())[0]


def test_sentencepiece_size_beyond_the_texts_says_how_many_fit():
    with pytest.raises(ValueError, match=r"cannot make 300 pieces from the 3 training transcripts .*at most \d+"):
        train_tokenizer(["big black cat", "blue boat", "cold coffee"], 300)


def test_cli_refuses_settings_of_another_corpus_and_tokenizers_of_generated_ones(capsys):
    with pytest.raises(SystemExit):
        main(["--corpus", "manifest", "--root", "/data", "--no-progress"])
    assert "--root: settings of --corpus librispeech, not of the 'manifest' corpus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--corpus", "spoken", "--tokenizer", "sentencepiece", "--no-progress"])
    assert "--tokenizer: settings of the corpora read from disk (librispeech, manifest)" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="manifest .*nothing.tsv.* not found"):
        main(["--corpus", "manifest", "--train-manifest", "/nothing.tsv", "--valid-manifest", "/x.tsv",
              "--no-progress"])
