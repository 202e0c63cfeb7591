"""torchaudio's pretrained-bundle format, both ways, on files made here (nothing is downloaded).

The module fixture writes files of exactly ``EMFORMER_RNNT_BASE_LIBRISPEECH``'s format in torchaudio's
cache layout: a random ``emformer_rnnt_base(4097)`` state_dict (~300 MB, written once), 80-bin
statistics, and a SentencePiece BPE model of exactly 4096 pieces. SentencePiece refuses 4096 pieces
on 500 sentences of the spoken corpus's 414 words ("Vocabulary size too high ... <= 1458"): there are
too few distinct letter pairs to merge. 600 sentences of 3000 words of random letters hold enough for
the ~4060 merges (0.1 s to train).

Then torchaudio's own pipeline (``torch.hub.set_dir`` pointed at the files, its download function
replaced by one that fails) and :func:`pretrained.from_torchaudio_bundle` must give the same features,
encodings, logits and transcripts; our small models exported with ``export_torchaudio_bundle`` must
decode the same in torchaudio's ``RNNTBundle``; and broken folders must fail with clear errors.
"""
import dataclasses
import io
import json
import os
import random
import shutil

import pytest
import sentencepiece as spm
import torch
import torchaudio

import emformer_edu
from emformer_edu import EmformerRNNTConfig, pretrained
from emformer_edu.data.sentencepiece_vocab import SentencePieceVocabulary
from emformer_edu.rnnt.greedy import greedy_decode
from emformer_edu.train import bundle
from emformer_edu.train.metrics import edit_distance

from conftest import needs_espeak

BLANK = 4096
# Random weights put blank at ~1/4097, so a search would emit a token at nearly every step (slow and
# long). A higher blank bias leaves a few tokens per second: short transcripts that can still differ.
BLANK_BIAS = 2.0
BEAM = 3
SENTENCE = "hello world this is a test"
MAX_CER = {"toy": 0.1, "spoken": 0.5}  # character error rates on 3 held-out utterances (see test_pretrained*)


def _sentencepiece_4096() -> bytes:
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(3000)]
    texts = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(600)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # torchaudio's LibriSpeech recipe settings
        sentence_iterator=iter(texts), model_writer=model, vocab_size=4096, model_type="bpe",
        character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2, num_threads=1)
    return model.getvalue()


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, bytes):
        with open(path, "wb") as f:
            f.write(data)
    elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        with open(path, "w") as f:
            json.dump(data, f)
    else:
        torch.save(data, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``{hub}/torchaudio/<key>`` for the three keys; returns ``(hub, root, paths, stats)``."""
    hub = tmp_path_factory.mktemp("hub")
    root = os.path.join(hub, "torchaudio")
    paths = {k: os.path.join(root, *key.split("/")) for k, key in bundle.BUNDLE_FILES.items()}
    torch.manual_seed(0)
    model = emformer_edu.emformer_rnnt_base(4097)
    with torch.no_grad():
        model.joiner.linear.bias[BLANK] += BLANK_BIAS
    _write(paths["weights"], model.state_dict())
    g = torch.Generator().manual_seed(1)
    stats = {"mean": (10 + 3 * torch.randn(80, generator=g)).tolist(),
             "invstddev": (0.2 + 0.1 * torch.rand(80, generator=g)).tolist()}
    _write(paths["stats"], stats)
    _write(paths["sp_model"], _sentencepiece_4096())
    yield str(hub), root, paths, stats
    shutil.rmtree(hub)  # 300 MB: pytest would keep it with its last three runs


@pytest.fixture(scope="module")
def ours(files):
    return pretrained.from_torchaudio_bundle(files[1])


@pytest.fixture(scope="module")
def theirs(files):
    """torchaudio's ``EMFORMER_RNNT_BASE_LIBRISPEECH`` reading the files from its cache (set to ``hub``)."""
    def no_download(key, path, progress):
        raise AssertionError(f"torchaudio tried to download {key}")

    old = torch.hub.get_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torchaudio.utils.download, "_download", no_download)
        torch.hub.set_dir(files[0])
        try:
            b = torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH
            return b.get_feature_extractor(), b.get_decoder(), b.get_token_processor()
        finally:
            torch.hub.set_dir(old)


@pytest.fixture(scope="module")
def utterance():
    return emformer_edu.speak(SENTENCE)


# ----------------------------------------------------------------------------- reading torchaudio's files
def test_loads_the_bundle_as_a_pretrained(files, ours):
    _, _, paths, stats = files
    assert ours.model.config == EmformerRNNTConfig.base()
    assert round(sum(p.numel() for p in ours.model.parameters()) / 1e6, 1) == 76.7
    assert not ours.model.training
    saved = torch.load(paths["weights"], weights_only=True)
    own = ours.model.state_dict()
    assert own.keys() == saved.keys() and all(torch.equal(own[k], saved[k]) for k in saved)
    assert isinstance(ours.vocab, SentencePieceVocabulary)
    assert (ours.vocab.num_tokens, ours.vocab.num_symbols, ours.blank) == (4096, 4097, BLANK)
    assert ours.feature_extractor.right_padding == 4 == ours.right_context_length
    assert ours.feature_extractor.mean.tolist() == torch.tensor(stats["mean"]).tolist()
    assert ours.feature_extractor.invstddev.tolist() == torch.tensor(stats["invstddev"]).tolist()
    assert ours.config["model"] == dataclasses.asdict(EmformerRNNTConfig.base())
    assert ours.config["corpus"] == ours.corpus == "librispeech"
    assert ours.config["tokenizer"]["model"] == paths["sp_model"]


@needs_espeak
def test_real_speech_model_has_no_synthetic_corpus(ours, utterance):
    assert (ours.synthetic_config, ours.spoken_config, ours.lexicon, ours.test_voices) == (None,) * 4
    with pytest.raises(ValueError, match="cannot be synthesized"):
        ours.held_out(3)
    with pytest.raises(ValueError, match="cannot be synthesized"):
        ours.evaluate(3)
    with pytest.raises(ValueError, match="no settings of its corpus 'librispeech'"):
        ours.corpus_config
    # What it does have: features, chunks, a beam search.
    feats = ours.features(utterance.waveform)
    assert feats.shape == (utterance.waveform.numel() // 160 + 1 + 4, 80)
    chunks = ours.chunks(feats)
    assert all(c.shape == (1, 20, 80) for c, _ in chunks)
    assert ours.beam_search().blank == BLANK


@needs_espeak
def test_same_features_encodings_and_logits_as_torchaudio(ours, theirs, utterance):
    extractor, decoder, _ = theirs
    with torch.no_grad():
        feats, length = extractor(utterance.waveform)
        mine = ours.features(utterance.waveform)
        assert feats.shape == mine.shape and int(length) == mine.size(0)
        assert (feats - mine).abs().max() <= 1e-5

        T = torch.tensor([feats.size(0)])
        enc, enc_len = ours.model.transcribe(feats[None], T)
        ta_enc, ta_len = decoder.model.transcribe(feats[None], T)
        assert torch.equal(enc_len, ta_len) and enc.shape == (1, (T.item() - 4) // 4, 1024)
        assert (enc - ta_enc).abs().max() <= 1e-4

        tokens = torch.tensor([[BLANK, 5, 700, 4095]])
        pred, pred_len, _ = ours.model.predict(tokens, torch.tensor([4]), None)
        ta_pred, _, _ = decoder.model.predict(tokens, torch.tensor([4]), None)
        logits = ours.model.join(enc, enc_len, pred, pred_len)[0]
        ta_logits = decoder.model.join(ta_enc, ta_len, ta_pred, pred_len)[0]
        assert logits.shape == (1, enc.size(1), 4, 4097)
        assert (logits - ta_logits).abs().max() <= 1e-4

        # Chunk by chunk (the chunks our Pretrained makes), each model carrying its own state.
        state, ta_state, outs, ta_outs = None, None, [], []
        for chunk, n in ours.chunks(mine):
            out, _, state = ours.model.transcribe_streaming(chunk, n, state)
            ta_out, _, ta_state = decoder.model.transcribe_streaming(chunk, n, ta_state)
            outs.append(out)
            ta_outs.append(ta_out)
        assert (torch.cat(outs, 1) - torch.cat(ta_outs, 1)).abs().max() <= 1e-4


@needs_espeak
def test_same_transcripts_as_torchaudio(ours, theirs, utterance):
    extractor, decoder, token_processor = theirs
    wave = utterance.waveform
    with torch.no_grad():
        feats, length = extractor(wave)
        ta_beam = token_processor(decoder(feats, length, BEAM)[0][0])
        beam = ours.recognize(wave, beam_width=BEAM)
        assert beam == ta_beam and len(beam.split()) >= 2, (beam, ta_beam)

        # Greedy: the same search on torchaudio's model object.
        T = torch.tensor([feats.size(0) - 4])
        ta_greedy = ours.vocab.decode(greedy_decode(decoder.model, feats[None], T, BLANK)[0][0])
        greedy = ours.recognize(wave, beam_width=None)
        assert greedy == ta_greedy and greedy, (greedy, ta_greedy)

        # The streaming loop of torchaudio's docs, with torchaudio's decoder and with ours.
        mine, hyps, state, ta_hyps, ta_state = ours.beam_search(), None, None, None, None
        for chunk, n in ours.chunks(ours.features(wave)):
            hyps, state = mine.infer(chunk, n, BEAM, state=state, hypothesis=hyps)
            ta_hyps, ta_state = decoder.infer(chunk, n, BEAM, state=ta_state, hypothesis=ta_hyps)
        assert hyps[0].tokens == ta_hyps[0][0] and len(hyps[0].tokens) > 2
        assert ours.vocab.decode(hyps[0].tokens[1:]) == token_processor(ta_hyps[0][0])


# ----------------------------------------------------------------------------- writing ours in torchaudio's format
def test_export_of_the_base_model_is_torchaudios_format(files, ours, tmp_path):
    _, _, paths, stats = files
    out = tmp_path / "hub" / "torchaudio"
    ta = pretrained.export_torchaudio_bundle(ours, out)
    written = bundle.find_bundle_files(out)
    assert written == {k: str(out / key) for k, key in bundle.BUNDLE_FILES.items()}
    a, b = torch.load(written["weights"], weights_only=True), torch.load(paths["weights"], weights_only=True)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in b)
    with open(written["sp_model"], "rb") as f1, open(paths["sp_model"], "rb") as f2:
        assert f1.read() == f2.read()
    with open(written["stats"]) as f:  # the same numbers (as float32, which the model reads)
        assert json.load(f) == {k: torch.tensor(v).tolist() for k, v in stats.items()}
    # The returned RNNTBundle has the stock bundle's settings, over the written files.
    stock = torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH
    for field in ("_right_padding", "_blank", "_sample_rate", "_n_fft", "_n_mels", "_hop_length",
                  "_segment_length", "_right_context_length"):
        assert getattr(ta, field) == getattr(stock, field), field
    assert ta._rnnt_path == written["weights"] and ta._sp_model_path == written["sp_model"]
    assert ta._rnnt_factory_func().state_dict().keys() == b.keys()
    shutil.rmtree(tmp_path / "hub")


@needs_espeak
@pytest.mark.parametrize("name", ["toy", "spoken"])
def test_exported_small_model_decodes_the_same_in_torchaudio(name, tmp_path):
    model = getattr(pretrained, name)()
    ta = pretrained.export_torchaudio_bundle(model, tmp_path)
    extractor, decoder, token_processor = ta.get_feature_extractor(), ta.get_decoder(), ta.get_token_processor()
    pieces = [token_processor.sp_model.id_to_piece(i) for i in range(model.vocab.num_tokens)]
    assert pieces == [t.replace(" ", "\u2581") for t in model.vocab.tokens]
    assert token_processor.sp_model.unk_id() == model.blank  # the one piece no hypothesis holds
    data, texts = model.held_out(3), []
    for utt in data:
        with torch.no_grad():
            feats, length = extractor(utt.waveform)
            assert (feats - model.features(utt.waveform)).abs().max() <= 1e-5
            ta_text = token_processor(decoder(feats, length, 4)[0][0], lstrip=False)
        texts.append(model.recognize(utt.waveform, beam_width=4))
        assert texts[-1] == ta_text
    # Trained models: the transcripts are near the truth, not only equal to each other.
    refs = [model.vocab.decode(u.tokens) for u in data]
    cer = sum(edit_distance(r, t) for r, t in zip(refs, texts)) / sum(len(r) for r in refs)
    assert cer <= MAX_CER[name], (refs, texts)


def test_export_refuses_what_torchaudio_cannot_read(tmp_path):
    toy = pretrained.toy()
    with pytest.raises(ValueError, match="symbols"):
        pretrained.export_torchaudio_bundle(toy, tmp_path, vocab=emformer_edu.Vocabulary.letters(5))
    with pytest.raises(ValueError, match="needs stats and vocab"):
        pretrained.export_torchaudio_bundle(toy.model, tmp_path)
    with pytest.raises(ValueError, match="commas"):
        bundle.sentencepiece_model(emformer_edu.Vocabulary(("a", "b,c")))
    assert not os.listdir(tmp_path)  # nothing half-written


# ----------------------------------------------------------------------------- errors
def test_missing_folder_and_files_say_where_torchaudio_keeps_them(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        pretrained.from_torchaudio_bundle(tmp_path / "nowhere")
    # Everything but the weights, flat.
    for kind in ("stats", "sp_model"):
        shutil.copy(files[2][kind], tmp_path)
    with pytest.raises(FileNotFoundError, match="emformer_rnnt_base_librispeech.pt") as err:
        pretrained.from_torchaudio_bundle(tmp_path)
    assert os.path.join(bundle.torchaudio_cache_dir(), "models", "emformer_rnnt_base_librispeech.pt") in str(err.value)
    assert "never downloads" in str(err.value) and "get_decoder()" in str(err.value)


def test_finds_flat_cache_and_hub_folders(files, tmp_path):
    hub, root, paths, _ = files
    assert bundle.find_bundle_files(root) == paths
    assert bundle.find_bundle_files(hub) == paths  # the folder holding torchaudio/
    assert bundle.find_bundle_files(paths["weights"]) == paths  # the weights file itself
    for path in paths.values():
        os.symlink(path, tmp_path / os.path.basename(path))
    assert bundle.find_bundle_files(tmp_path) == {k: str(tmp_path / os.path.basename(p)) for k, p in paths.items()}
    old = torch.hub.get_dir()
    torch.hub.set_dir(hub)
    try:
        assert bundle.find_bundle_files() == paths  # None: torchaudio's own cache
    finally:
        torch.hub.set_dir(old)


def test_wrong_weights_stats_or_pieces_are_named(files, tmp_path):
    _, _, paths, stats = files
    shutil.copy(paths["sp_model"], tmp_path)
    shutil.copy(paths["stats"], tmp_path)
    weights = tmp_path / "emformer_rnnt_base_librispeech.pt"
    torch.save(pretrained.toy().model.state_dict(), weights)  # another configuration: keys and shapes differ
    with pytest.raises(ValueError, match=r"not those of torchaudio's emformer_rnnt_base\(num_symbols=4097\)") as err:
        pretrained.from_torchaudio_bundle(tmp_path)
    assert str(weights) in str(err.value) and len(str(err.value)) < 1500  # a summary, not 300 names
    with open(tmp_path / "global_stats_rnnt_librispeech.json", "w") as f:
        json.dump({"mean": stats["mean"][:79], "invstddev": stats["invstddev"][:79]}, f)
    with pytest.raises(ValueError, match="global_stats_rnnt_librispeech.json.* 79 mel bins"):
        pretrained.from_torchaudio_bundle(tmp_path)
    with open(tmp_path / "global_stats_rnnt_librispeech.json", "w") as f:
        f.write('{"mean": [1.0,')
    with pytest.raises(ValueError, match="global_stats_rnnt_librispeech.json.* not valid JSON"):
        pretrained.from_torchaudio_bundle(tmp_path)
    SentencePieceVocabulary.train(["hello world again and again"] * 20, 30).save(
        tmp_path / "spm_bpe_4096_librispeech.model")
    with pytest.raises(ValueError, match="spm_bpe_4096_librispeech.model' has 30 pieces"):
        pretrained.from_torchaudio_bundle(tmp_path)


# ----------------------------------------------------------------------------- load(): a "tokenizer" entry
def test_load_reads_a_sentencepiece_tokenizer_entry(tmp_path):
    names = {k: v.format(name="toy") for k, v in pretrained.ASSET_FILES.items()}
    assets = os.path.join(os.path.dirname(emformer_edu.__file__), "train", "assets")
    for f in names.values():
        shutil.copy(os.path.join(assets, f), tmp_path)
    vocab = SentencePieceVocabulary.train(["the cat sat on the mat", "a dog and a cat"] * 5, 20)  # + blank = 21
    vocab.save(tmp_path / "toy_spm.model")
    with open(tmp_path / names["config"]) as f:
        cfg = json.load(f)
    cfg.pop("vocabulary")
    cfg.update(tokenizer={"kind": "sentencepiece", "model": "toy_spm.model"}, corpus="a_corpus_of_the_future")
    with open(tmp_path / names["config"], "w") as f:
        json.dump(cfg, f)
    loaded = pretrained.load_exported(str(tmp_path), "toy")
    assert isinstance(loaded.vocab, SentencePieceVocabulary) and loaded.vocab.tokens == vocab.tokens
    assert loaded.corpus == "a_corpus_of_the_future" and loaded.spoken_config is None
    with pytest.raises(ValueError, match="cannot be synthesized"):
        loaded.held_out(1)

    cfg["vocabulary"] = list("abcdefghijklmnopqrst")  # not the model's pieces
    with open(tmp_path / names["config"], "w") as f:
        json.dump(cfg, f)
    with pytest.raises(ValueError, match="differs from the pieces"):
        pretrained.load_exported(str(tmp_path), "toy")
    os.remove(tmp_path / "toy_spm.model")
    with pytest.raises(FileNotFoundError, match="toy_spm.model"):
        pretrained.load_exported(str(tmp_path), "toy")
    cfg.pop("tokenizer")  # without one, an unknown corpus is refused as before
    with open(tmp_path / names["config"], "w") as f:
        json.dump(cfg, f)
    with pytest.raises(ValueError, match="a_corpus_of_the_future"):
        pretrained.load_exported(str(tmp_path), "toy")
