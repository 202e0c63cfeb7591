"""torchaudio's pretrained-model format: read its LibriSpeech Emformer RNN-T, write ours in it.

``torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH`` is three files and some code. The files are
fetched on first use into ``torch.hub.get_dir()/torchaudio/`` (``~/.cache/torch/hub/torchaudio`` unless
``TORCH_HOME`` says otherwise), each at its key::

    models/emformer_rnnt_base_librispeech.pt            # state_dict of emformer_rnnt_base(4097): 293 MB
    pipeline-assets/global_stats_rnnt_librispeech.json  # {"mean": [80 floats], "invstddev": [80 floats]}
    pipeline-assets/spm_bpe_4096_librispeech.model      # SentencePiece BPE: 4096 pieces, ids 0 .. 4095

Everything else is code in ``torchaudio/pipelines/rnnt_pipeline.py``, an ``RNNTBundle``: the factory
that builds the model, blank = 4096 (the last id), right padding 4, the mel settings. So:

* :func:`read_bundle` loads the three files into this package's classes: the 76.7 M-parameter model
  becomes an :class:`~emformer_edu.transducer.RNNT` (same ``state_dict`` keys, loaded strictly) and
  every figure and decoder of the course works on a model trained on 960 h of real speech;
* :func:`write_bundle` writes one of our models as the same three files, and :func:`rnnt_bundle`
  builds torchaudio's own ``RNNTBundle`` over them: torchaudio's feature extractor, beam search and
  token processor then decode with our weights (a check that the two models are one model).

This package never downloads: the files come from torchaudio itself, on a machine with internet
(``EMFORMER_RNNT_BASE_LIBRISPEECH.get_decoder()`` etc. fetch them into the folder above).

A character vocabulary has no SentencePiece model, but torchaudio's token processor needs one. It only
maps ids to pieces (dropping the ``unk``, ``eos`` and ``pad`` ids) and turns ``"▁"`` into a space, so
:func:`sentencepiece_model` writes a model whose pieces are our tokens in our order (space as ``"▁"``)
with its ``<unk>`` piece at the blank's id, which no hypothesis contains: same ids, same text.

Notation: F mel bins, V vocabulary (tokens + blank).
"""
import dataclasses
import io
import os
from functools import partial
from typing import Dict, Optional, Tuple, Union

import torch

from ..config import EmformerRNNTConfig
from ..data.corpus import Vocabulary
from ..data.features import HOP_LENGTH, N_FFT, SAMPLE_RATE, FeatureExtractor, GlobalStats
from ..data.sentencepiece_vocab import WORD_BOUNDARY, SentencePieceVocabulary, _sentencepiece
from ..transducer.model import RNNT, build_model
from .checkpoints import load_weights, read_state_dict, read_stats

__all__ = ["BUNDLE_FILES", "BUNDLE_NAME", "torchaudio_cache_dir", "find_bundle_files", "read_bundle",
           "sentencepiece_model", "write_bundle", "rnnt_bundle"]

BUNDLE_NAME = "torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH"
# The bundle's keys: paths under torchaudio's cache folder (and on download.pytorch.org/torchaudio/).
BUNDLE_FILES = {
    "weights": "models/emformer_rnnt_base_librispeech.pt",
    "stats": "pipeline-assets/global_stats_rnnt_librispeech.json",
    "sp_model": "pipeline-assets/spm_bpe_4096_librispeech.model",
}
_WHAT = {"weights": "model weights", "stats": "feature statistics", "sp_model": "SentencePiece model"}
_FETCH = ("on a machine with internet, run  python -c \"import torchaudio; b = torchaudio.pipelines."
          "EMFORMER_RNNT_BASE_LIBRISPEECH; b.get_decoder(); b.get_feature_extractor(); b.get_token_processor()\"  "
          "(it downloads ~300 MB into torch.hub.get_dir()/torchaudio) and copy that folder here")


def torchaudio_cache_dir() -> str:
    """Where torchaudio keeps its downloaded assets: ``torch.hub.get_dir()/torchaudio``."""
    return os.path.join(torch.hub.get_dir(), "torchaudio")


# ----------------------------------------------------------------------------- reading
def find_bundle_files(path_or_dir: Optional[Union[str, os.PathLike]] = None) -> Dict[str, str]:
    """The paths of the three files, found in ``path_or_dir`` (default: torchaudio's cache).

    Each file may sit at its key (torchaudio's layout: ``models/...``, ``pipeline-assets/...``) or
    directly in the folder (a flat copy); a folder holding ``torchaudio/`` (the torch hub folder) and
    the path of the weights file itself work too. Raises ``FileNotFoundError`` naming the missing
    folder or file, where torchaudio would put it and how to get it: nothing is ever downloaded.
    """
    root = torchaudio_cache_dir() if path_or_dir is None else os.fspath(path_or_dir)
    if os.path.isfile(root):  # the weights file itself: its folder, or the cache folder above models/
        root = os.path.dirname(os.path.abspath(root))
        if os.path.basename(root) == "models":
            root = os.path.dirname(root)
    if not os.path.isdir(root):
        where = "torchaudio's cache (torch.hub.get_dir()/torchaudio)" if path_or_dir is None else "the folder given"
        raise FileNotFoundError(f"{root!r} ({where}) does not exist, so the files of {BUNDLE_NAME} are not there. "
                                f"This package never downloads: {_FETCH}, or pass the folder that holds them.")
    roots = [root, os.path.join(root, "torchaudio")]
    paths = {}
    for kind, key in BUNDLE_FILES.items():
        candidates = [os.path.join(r, *key.split("/")) for r in roots] + [os.path.join(r, os.path.basename(key)) for r in roots]
        found = [p for p in candidates if os.path.isfile(p)]
        if not found:
            raise FileNotFoundError(
                f"{_WHAT[kind]} of {BUNDLE_NAME} not found: no {os.path.basename(key)!r} in {root!r} (looked at "
                f"{candidates[0]!r} and {candidates[2]!r}). torchaudio keeps it at "
                f"{os.path.join(torchaudio_cache_dir(), *key.split('/'))!r}. This package never downloads: {_FETCH}."
            )
        paths[kind] = found[0]
    return paths


def _check_keys(model: RNNT, state_dict: Dict[str, torch.Tensor], path: str) -> None:
    """A short message for weights of another model (load_weights would list every parameter)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        first = lambda items: "; ".join(items[:3]) + (" ..." if len(items) > 3 else "")  # noqa: E731
        raise ValueError(
            f"model weights {path!r} are not those of torchaudio's emformer_rnnt_base(num_symbols=4097): "
            f"{len(missing)} parameters missing ({first(missing)}), {len(unexpected)} unexpected "
            f"({first(unexpected)}), {len(shapes)} of another shape ({first(shapes)}). A model of another "
            f"configuration loads with rnnt_bundle(folder, config), not as {BUNDLE_NAME}."
        )


def read_bundle(path_or_dir: Optional[Union[str, os.PathLike]] = None
                ) -> Tuple[RNNT, GlobalStats, SentencePieceVocabulary, Dict[str, str]]:
    """``(model in eval mode, statistics, vocabulary, paths)`` from the bundle's files (see
    :func:`find_bundle_files`). Raises ``ValueError`` naming the file for weights of another model
    (keys or shapes), malformed statistics, or a SentencePiece model without 4096 pieces."""
    paths = find_bundle_files(path_or_dir)
    config = EmformerRNNTConfig.base(num_symbols=4097)
    vocab = SentencePieceVocabulary.from_file(paths["sp_model"])
    if vocab.num_symbols != config.num_symbols:
        raise ValueError(f"SentencePiece model {paths['sp_model']!r} has {vocab.num_tokens} pieces; "
                         f"{BUNDLE_NAME} predicts {config.num_symbols - 1} pieces + blank.")
    stats = read_stats(paths["stats"], num_mel_bins=config.input_dim)
    state_dict = read_state_dict(paths["weights"])
    model = build_model(config)
    _check_keys(model, state_dict, paths["weights"])
    load_weights(model, state_dict, source=repr(paths["weights"]), config=config)  # strict
    return model.eval(), stats, vocab, paths


# ----------------------------------------------------------------------------- writing
def sentencepiece_model(vocab: Vocabulary) -> bytes:
    """A SentencePiece model (its bytes) that torchaudio's token processor decodes like ``vocab``.

    A :class:`SentencePieceVocabulary` is its own model. For token names (e.g. characters) a model
    is made whose piece i is token i (space written ``"▁"``) and whose ``<unk>`` is the blank's id.
    """
    if isinstance(vocab, SentencePieceVocabulary):
        return vocab.model_proto
    spm = _sentencepiece()  # only bundles need it

    pieces = [WORD_BOUNDARY if t == " " else t for t in vocab.tokens]
    bad = [t for t in pieces if not t or "," in t or any(c.isspace() for c in t) or t == "<unk>"]
    if bad or len(set(pieces)) != len(pieces):
        raise ValueError(f"cannot write a SentencePiece model for tokens {bad or pieces}: each must be a distinct, "
                         f"non-empty name without commas or whitespace other than a single space.")
    model = io.BytesIO()
    # User-defined pieces take ids 0, 1, ... in the order given; unk takes the blank's id; no bos/eos/pad.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["".join(p for p in pieces if p != WORD_BOUNDARY) or "a"]), model_writer=model,
        model_type="char", vocab_size=len(pieces) + 1, hard_vocab_limit=False, user_defined_symbols=pieces,
        unk_id=vocab.blank, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    got = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if got[:-1] != pieces or sp.unk_id() != vocab.blank:  # sentencepiece added pieces of its own
        raise ValueError(f"SentencePiece did not keep the tokens in order: got pieces {got}.")
    return model.getvalue()


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _atomic_write(path: str, write) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    write(tmp)
    os.replace(tmp, path)  # an interrupted export never leaves half a file under the real name


def write_bundle(model: RNNT, stats: Union[GlobalStats, FeatureExtractor], vocab: Vocabulary,
                 directory: Union[str, os.PathLike]) -> Dict[str, str]:
    """Write ``model`` (float32 ``state_dict``), ``stats`` and ``vocab`` (see :func:`sentencepiece_model`)
    as the bundle's three files under ``directory``, in torchaudio's cache layout; returns their paths.

    The names are the bundle's whatever the model, so the folder can stand in for torchaudio's cache.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, EmformerRNNTConfig):
        raise ValueError("model has no .config; build it with emformer_rnnt_model() or emformer_rnnt_base().")
    if isinstance(stats, FeatureExtractor):
        stats = stats.global_stats
    if vocab.num_symbols != config.num_symbols:
        raise ValueError(f"the vocabulary has {vocab.num_tokens} tokens + blank = {vocab.num_symbols} symbols, "
                         f"the model predicts num_symbols = {config.num_symbols}.")
    if stats.mean.numel() != config.input_dim:
        raise ValueError(f"the statistics have {stats.mean.numel()} mel bins, the model reads {config.input_dim}.")
    proto = sentencepiece_model(vocab)  # before writing anything: it may refuse the tokens
    paths = {k: os.path.join(os.path.abspath(directory), *key.split("/")) for k, key in BUNDLE_FILES.items()}
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    _atomic_write(paths["weights"], lambda p: torch.save(state, p))
    _atomic_write(paths["stats"], stats.save)
    _atomic_write(paths["sp_model"], lambda p: _write_bytes(p, proto))
    return paths


def rnnt_bundle(directory: Union[str, os.PathLike], config: Optional[EmformerRNNTConfig] = None):
    """torchaudio's own ``RNNTBundle`` over the files in ``directory`` (as :func:`write_bundle` lays them
    out), building the model of ``config`` (default: the base model, i.e. ``EMFORMER_RNNT_BASE_LIBRISPEECH``).

    The paths are absolute: torchaudio joins a key to its cache folder, and an absolute key replaces
    that folder; the file exists, so torchaudio skips the download.
    """
    import torchaudio  # imported here: only bundles need it

    config = EmformerRNNTConfig.base() if config is None else config
    paths = find_bundle_files(directory)
    return torchaudio.pipelines.RNNTBundle(
        _rnnt_path=os.path.abspath(paths["weights"]),
        _rnnt_factory_func=partial(torchaudio.models.emformer_rnnt_model, **dataclasses.asdict(config)),
        _global_stats_path=os.path.abspath(paths["stats"]),
        _sp_model_path=os.path.abspath(paths["sp_model"]),
        _right_padding=config.right_context_length,  # R zero frames, as FeatureExtractor pads
        _blank=config.blank,
        _sample_rate=SAMPLE_RATE,
        _n_fft=N_FFT,
        _n_mels=config.input_dim,
        _hop_length=HOP_LENGTH,
        _segment_length=config.segment_length,
        _right_context_length=config.right_context_length,
    )
