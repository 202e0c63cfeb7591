"""Checkpoints and exported models: written atomically, read back with errors that name the file.

Two kinds of files:

* a training checkpoint (:func:`save_checkpoint`, :func:`load_checkpoint`): one ``torch.save``d
  dict (``"format": CHECKPOINT_FORMAT``) with everything :meth:`Trainer.resume` needs
  (:func:`trainer_state` writes it, :func:`restore_trainer` reads it back);
* the exported inference files (:func:`export_assets`, read by :func:`emformer_edu.train.pretrained.load`):
  float32 weights, feature statistics ``{"mean": [F], "invstddev": [F]}`` and a config JSON, plus
  the SentencePiece model (``{name}_spm.model``) when the tokens are SentencePiece pieces.

Tokens. The config JSON always lists the token names (``"vocabulary"``, blank not included). Without
a ``"tokenizer"`` entry they are characters or letters, spelled one token per character. With one,
``{"kind": "sentencepiece", "model": "{name}_spm.model"}``, the texts are encoded and decoded by
that SentencePiece model (its path relative to the config's folder). A checkpoint carries the model
itself, as bytes (``"sentencepiece_model"``), so a resumed run needs no other file.

Every file goes through one guarded reader, :func:`read_torch` or :func:`read_json`: a missing file
raises ``FileNotFoundError`` and an unreadable one ``ValueError``, both naming the file.
:func:`load_weights` puts a ``state_dict`` into a model and names every mismatch.

Notation: F mel bins, D model dim, V vocabulary (tokens + blank).
"""
import dataclasses
import json
import os
from typing import TYPE_CHECKING, Dict, Optional

import torch

from ..data.features import GlobalStats
from ..data.sentencepiece_vocab import SentencePieceVocabulary
from .corpora import corpus_config_from_dict

if TYPE_CHECKING:  # type hints only: the trainer imports this module
    from .trainer import Trainer

__all__ = [
    "ASSET_FILES", "CHECKPOINT_FORMAT", "read_torch", "read_json", "read_state_dict", "read_stats", "load_weights",
    "saved_corpus_config", "saved_vocabulary", "trainer_state", "restore_trainer", "save_checkpoint",
    "load_checkpoint", "export_assets", "TOKENIZER_FILE",
]

CHECKPOINT_FORMAT = "emformer_edu.train/1"
# File names written by export_assets and read by pretrained.load / pretrained.toy.
ASSET_FILES = {"weights": "{name}_emformer_rnnt.pt", "stats": "{name}_global_stats.json", "config": "{name}_config.json"}
TOKENIZER_FILE = "{name}_spm.model"  # written beside them only for a SentencePiece vocabulary


# ----------------------------------------------------------------------------- reading files
def _check_file(path: str, what: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path!r} (no such file).")
    return path


def read_torch(path: str, what: str = "torch file"):
    """``torch.load(path, weights_only=True)`` on the CPU, with one clear error naming the file.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for an empty, truncated or
    corrupt one (random bytes included). torch's own message is left out on purpose: for a
    file it refuses, it suggests ``weights_only=False``, i.e. running code from a file that is
    already known to be broken.
    """
    path = _check_file(path, what)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{what} {path!r} is empty (0 bytes): was it written completely?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and decoding errors of every kind
        reason = type(err).__name__
    raise ValueError(
        f"{what} {path!r} cannot be read as tensors ({reason}): it is not a torch.save file, it is truncated "
        f"or corrupt, or it holds objects other than tensors and plain containers. Write it again."
    )


def read_json(path: str, what: str = "JSON file") -> Dict:
    """A JSON object from ``path``; ``FileNotFoundError`` / ``ValueError`` naming the file otherwise."""
    path = _check_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            blob = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path!r} is not valid JSON: {err}") from err
    if not isinstance(blob, dict):
        raise ValueError(f"{what} {path!r} must hold a JSON object {{...}}, got a {type(blob).__name__}.")
    return blob


def read_state_dict(path: str, what: str = "model weights") -> Dict[str, torch.Tensor]:
    """A ``state_dict`` (parameter name -> tensor) saved with ``torch.save``."""
    blob = read_torch(path, what)
    if isinstance(blob, dict) and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return blob
    if isinstance(blob, torch.Tensor):
        held = f"a single tensor of shape {tuple(blob.shape)}"
    elif isinstance(blob, dict):
        held = "a dict whose values are not all tensors"
    else:
        held = f"a {type(blob).__name__}"
    raise ValueError(f"{what} {os.fspath(path)!r} holds {held}, not a state_dict (a dict of parameter name -> tensor).")


def read_stats(path: str, num_mel_bins: Optional[int] = None) -> GlobalStats:
    """Feature statistics in torchaudio's ``global_stats.json`` layout; ``num_mel_bins``: the F the model reads."""
    blob = read_json(path, "feature statistics")
    try:
        stats = GlobalStats(**blob)
    except (TypeError, ValueError, RuntimeError) as err:  # missing / extra keys, not F finite floats each
        raise ValueError(f"feature statistics {os.fspath(path)!r} must be {{\"mean\": [F floats], \"invstddev\": "
                         f"[F floats]}} (torchaudio's global_stats.json layout): {err}") from err
    if num_mel_bins is not None and stats.mean.numel() != num_mel_bins:
        raise ValueError(f"feature statistics {os.fspath(path)!r} have {stats.mean.numel()} mel bins, "
                         f"the model reads {num_mel_bins}.")
    return stats


def load_weights(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], source: str = "checkpoint",
                 config=None) -> None:
    """``model.load_state_dict(state_dict)``, but a mismatch raises one ``ValueError`` naming it.

    Args:
        source: how to name the weights in the message (e.g. the file path).
        config: the :class:`EmformerRNNTConfig` (or its dict) saved with the weights; if the model
            carries a ``config`` (every factory-built model does) the differing keys are named
            first, since a different config is the usual cause.
    Lists the differing config values, missing and unexpected parameter names, and every
    parameter whose shape differs (``name: checkpoint (a, b) vs model (c, d)``).
    """
    problems = []
    model_config = getattr(model, "config", None)
    if config is not None and model_config is not None:
        as_dict = lambda c: c if isinstance(c, dict) else dataclasses.asdict(c)  # noqa: E731
        config, model_config = as_dict(config), as_dict(model_config)
        diff = {k: (config.get(k), model_config.get(k)) for k in sorted(set(config) | set(model_config))
                if config.get(k) != model_config.get(k)}
        if diff:
            problems.append("config differs: " + ", ".join(f"{k}: {source} {a!r} vs model {b!r}" for k, (a, b) in diff.items()))
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: {source} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing:
        problems.append(f"missing from {source}: {missing}")
    if unexpected:
        problems.append(f"unexpected in {source}: {unexpected}")
    if shapes:
        problems.append("shape mismatch: " + "; ".join(shapes))
    if problems:
        raise ValueError(f"{source} does not match the model. " + " | ".join(problems))
    model.load_state_dict(state_dict)


# ----------------------------------------------------------------------------- training checkpoints
def trainer_state(trainer: "Trainer") -> Dict:
    """Everything :meth:`Trainer.resume` needs, as plain values and tensors (loads with ``weights_only=True``).

    Configs are stored as ``dataclasses.asdict``, the corpus's settings as ``"synthetic_config"``,
    ``"spoken_config"``, ... (after ``train_config["corpus"]``); a SentencePiece vocabulary's model as its
    bytes (``"sentencepiece_model"``); the random state makes a resumed run repeat the dropout masks an
    uninterrupted run would have drawn; with ``ema_decay`` > 0 the weight average goes in ``"weight_average"``.
    """
    blob = {
        "format": CHECKPOINT_FORMAT, "step": trainer.step, "elapsed_s": trainer.elapsed_s,
        "train_config": dataclasses.asdict(trainer.config),
        "model_config": dataclasses.asdict(trainer.model_config),
        f"{trainer.config.corpus}_config": dataclasses.asdict(trainer.corpus_config),
        "vocabulary": list(trainer.vocab.tokens),
        "global_stats": trainer.extractor.global_stats.to_dict(),
        "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(), "rng_state": torch.get_rng_state(),
        "history": list(trainer.history),
    }
    if isinstance(trainer.vocab, SentencePieceVocabulary):
        blob["sentencepiece_model"] = trainer.vocab.model_proto
    if trainer.average is not None:
        blob["weight_average"] = trainer.average.state_dict()
    return blob


def restore_trainer(trainer: "Trainer", blob: Dict, source: str = "checkpoint") -> None:
    """Put the state of :func:`trainer_state`'s ``blob`` into a trainer built from the same configs."""
    load_weights(trainer.model, blob["model"], source=source, config=trainer.model_config)
    trainer.optimizer.load_state_dict(blob["optimizer"])
    trainer.scheduler.load_state_dict(blob["scheduler"])
    # The saved lr follows the saved schedule; re-evaluate it in case a new `steps` changed the schedule.
    for group, lam in zip(trainer.optimizer.param_groups, trainer.scheduler.lr_lambdas):
        group["lr"] = group["initial_lr"] * lam(trainer.scheduler.last_epoch)
    trainer.step, trainer.elapsed_s = int(blob["step"]), float(blob["elapsed_s"])
    trainer.history = list(blob["history"])
    torch.set_rng_state(blob["rng_state"])
    if trainer.average is not None and "weight_average" in blob:  # else (ema_decay newly set): it starts here
        try:
            trainer.average.load_state_dict(blob["weight_average"])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None


def saved_corpus_config(blob: Dict, corpus: str, path: str = "checkpoint"):
    """The corpus settings in :func:`trainer_state`'s ``blob``; ``ValueError`` if it was trained on another
    corpus than ``corpus`` (a resumed run cannot switch: the vocabulary and the data would change)."""
    saved = blob["train_config"].get("corpus", "synthetic")  # checkpoints older than the field: synthetic
    if corpus != saved:
        raise ValueError(f"{os.fspath(path)!r} was trained on the {saved!r} corpus; a resumed run cannot switch "
                         f"to {corpus!r}.")
    return corpus_config_from_dict(saved, blob[f"{saved}_config"])


def saved_vocabulary(blob: Dict, path: str = "checkpoint") -> Optional[SentencePieceVocabulary]:
    """The SentencePiece vocabulary :func:`trainer_state` saved in ``blob``; ``None`` if the tokens are
    characters or letters (the trainer makes those again)."""
    if "sentencepiece_model" not in blob:
        return None
    try:
        vocab = SentencePieceVocabulary(model_proto=bytes(blob["sentencepiece_model"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)!r}: the saved SentencePiece model is unreadable: {err}") from None
    if list(vocab.tokens) != list(blob["vocabulary"]):
        raise ValueError(f"{os.fspath(path)!r}: the saved SentencePiece model's pieces are not the saved vocabulary.")
    return vocab


def save_checkpoint(path: str, blob: Dict) -> None:
    """``torch.save`` via a temporary file, so an interrupted save never leaves half a checkpoint."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> Dict:
    """A training checkpoint written by :meth:`Trainer.save`; clear errors for a wrong path or file."""
    blob = read_torch(path, "training checkpoint")
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an emformer_edu training checkpoint "
                         f"(expected format {CHECKPOINT_FORMAT!r}).")
    return blob


# ----------------------------------------------------------------------------- export
def export_assets(trainer: "Trainer", directory: str, name: str = "toy", extra: Optional[Dict] = None) -> Dict[str, str]:
    """Write the inference files :func:`emformer_edu.train.pretrained.load` reads; returns their paths.

    * ``{name}_emformer_rnnt.pt``: float32 ``state_dict`` only (no optimizer: small; with ``ema_decay`` > 0
      the weight average, :meth:`Trainer.weights_to_ship`);
    * ``{name}_global_stats.json``: feature statistics in torchaudio's ``global_stats.json`` layout;
    * ``{name}_config.json``: model config, vocabulary, the corpus (``"corpus"``: ``"synthetic"``,
      ``"spoken"``, ``"librispeech"`` or ``"manifest"``) and its settings (under that name), training
      config and results (``extra``, e.g. measured TERs; ``training["history"]`` is the learning curve);
    * ``{name}_spm.model``, for a SentencePiece vocabulary only: the model, named in the config as
      ``"tokenizer": {"kind": "sentencepiece", "model": "{name}_spm.model"}`` (relative to its folder).
    """
    os.makedirs(directory, exist_ok=True)
    paths = {k: os.path.join(directory, v.format(name=name)) for k, v in ASSET_FILES.items()}
    with trainer.weights_to_ship() as model:  # the weight average if the run kept one
        # clone: .to() of a CPU float32 tensor is the parameter itself, which leaving the block overwrites
        state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
                 for k, v in model.state_dict().items()}
    torch.save(state, paths["weights"])
    trainer.extractor.global_stats.save(paths["stats"])
    tokenizer = {}  # characters or letters: the vocabulary says it all
    if isinstance(trainer.vocab, SentencePieceVocabulary):
        model_file = TOKENIZER_FILE.format(name=name)
        paths["tokenizer"] = os.path.join(directory, model_file)
        trainer.vocab.save(paths["tokenizer"])
        tokenizer = {"tokenizer": {"kind": "sentencepiece", "model": model_file}}
    config = {
        "model": dataclasses.asdict(trainer.model_config),
        "vocabulary": list(trainer.vocab.tokens),
        "blank": trainer.blank,
        **tokenizer,
        "corpus": trainer.config.corpus,
        trainer.config.corpus: dataclasses.asdict(trainer.corpus_config),
        "training": {**dataclasses.asdict(trainer.config), "steps_done": trainer.step,
                     "history": trainer.history, **(extra or {})},
    }
    with open(paths["config"], "w") as f:
        json.dump(config, f, indent=2)
    return paths
