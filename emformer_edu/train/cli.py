r"""``python -m emformer_edu.train``: train, resume and export from the command line.

Every field of :class:`TrainConfig`, of the on-disk corpora's settings (:class:`LibriSpeechConfig`,
:class:`ManifestConfig`, whose shared fields ``tokenizer`` and ``sentencepiece_vocab_size`` are one option
each) and of :class:`~emformer_edu.config.EmformerRNNTConfig` is an option, generated
from the dataclass: ``batch_size`` becomes ``--batch-size`` with the field's type, default and
``metadata["help"]``; a ``bool`` field becomes a ``--flag`` / ``--no-flag`` pair. The model options
replace fields of ``EmformerRNNTConfig.toy()`` (after ``--model-config JSON``, if given), whose
``num_symbols`` follows ``--corpus`` and ``--tokenizer`` (21 synthetic, 29 for characters,
``--sentencepiece-vocab-size`` + 1 for SentencePiece). Only options given on the command line reach the
config, so with ``--resume`` they override the checkpoint's settings and everything else comes from it
(``--root`` too, if the data moved). The other options (``--out``, ``--resume``, ``--export``, ...) are
about the run, not the recipe.

The shipped toy model was made with::

    python -m emformer_edu.train --threads 1 --out runs/toy --export emformer_edu/train/assets

(600 steps of B = 32 utterances; about 3 minutes on one core of a shared 2-core CPU, held-out
greedy TER 0 %). On a busy machine use ``--threads 1``: this model's tensors are small, and a
second intra-op thread that has to wait for a busy core made steps 5-10 times slower.

The shipped spoken model (``pretrained.spoken()``) was made with::

    python -m emformer_edu.train --corpus spoken --threads 1 --num-workers 1 --batch-size 16 --steps 4400 \
        --lr 1.4e-3 --warmup-steps 200 --eval-every 1100 --num-valid 100 --stats-utterances 300 \
        --time-reduction-input-dim 36 --transformer-ffn-dim 576 --transformer-num-layers 4 --encoding-dim 160 \
        --symbol-embedding-dim 96 --transformer-dropout 0 --lstm-dropout 0.3 --ctc-weight 0.3 \
        --length-buckets 2 --out runs/spoken --export emformer_edu/train/assets

(``--corpus spoken``: fresh eSpeak NG sentences every step, made by ``--num-workers 1`` DataLoader process
on the second core while the model trains on the first; ``--name`` defaults to ``spoken`` there. About
0.19 s per step of 16 sentences on the 2-core CPU, so it fits in 15 minutes; the README gives the measured
time. The history of held-out CER and WER is in ``runs/spoken/history.json`` and in the exported config.)
The encoder's dropout and SpecAugment stay off: every sentence is new, so there is nothing to memorize. Dropout
after the predictor's LSTM (``--lstm-dropout``) and the auxiliary CTC loss (``--ctc-weight``,
:mod:`emformer_edu.rnnt.ctc`) are on for another reason: both make the model lean less on the predictor's
spellings, which is what made greedy search delete a sentence's tail after one wrong character.

The same command runs on N processes under ``torchrun`` (:mod:`.distributed`)::

    torchrun --standalone --nproc-per-node 2 -m emformer_edu.train --steps 6 --batch-size 8 --out D
    torchrun --standalone --nproc-per-node 4 -m emformer_edu.train --device cuda ...   # 4 GPUs, NCCL

``--batch-size`` stays the global batch (a multiple of N): N processes train the weights one process
would, to float32 rounding (dropout included: every rank draws the global batch's masks). Rank 0
alone prints, evaluates and writes the checkpoint, history and exports; a checkpoint resumes on any N.

Real speech from the learner's disk (nothing is downloaded; :mod:`.corpora`)::

    python -m emformer_edu.train --corpus librispeech --root /data --train-subsets train-clean-100 \
        --valid-subsets dev-clean --tokenizer sentencepiece --sentencepiece-vocab-size 256 --num-workers 4
    python -m emformer_edu.train --corpus manifest --train-manifest train.tsv --valid-manifest dev.tsv

(``/data/LibriSpeech/train-clean-100/...`` as the openslr.org archives extract; a manifest has one
``path<TAB>text`` line per recording.) With ``--tokenizer sentencepiece`` a BPE model is trained on the
training transcripts; ``--export`` then also writes ``{name}_spm.model``.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Dict, Optional, Sequence

import torch

from ..config import EmformerRNNTConfig
from ..data.librispeech import LibriSpeechConfig
from ..data.manifest import ManifestConfig
from ..data.recordings import RecordedCorpusConfig
from . import corpora, distributed
from .checkpoints import export_assets, read_json
from .config import TrainConfig
from .trainer import TrainEvent, Trainer

__all__ = ["build_parser", "config_overrides", "main"]

CORPUS_SETTINGS = {"librispeech": LibriSpeechConfig, "manifest": ManifestConfig}  # corpora with options of their own
SHARED = [f.name for f in dataclasses.fields(RecordedCorpusConfig)]  # their common fields: the tokens


def _option_type(annotation):
    """How one command-line word becomes a field value: int, float, str, bool, or Optional[str] ("none")."""
    if annotation in (int, float, str, bool):
        return annotation
    if annotation == Optional[str]:
        return lambda word: None if word.lower() == "none" else word
    raise TypeError(f"options handle int, float, str, bool and Optional[str] fields, not {annotation!r}.")


def add_config_options(parser: argparse.ArgumentParser, cls, defaults=None, note: str = "",
                       skip: Sequence[str] = ()) -> None:
    """One ``--kebab-case`` option per field of dataclass ``cls``: type, default and help from the field.

    ``defaults`` (an instance of ``cls``) supplies the shown defaults of a dataclass without its own, such as
    :class:`EmformerRNNTConfig`, whose values come from a preset. Defaults are ``SUPPRESS``ed so that an option
    left out does not appear in the parsed arguments at all: :func:`config_overrides` can then tell "not
    given" from "given the default". Fields named in ``skip`` get no option here (another group has it).
    """
    group = parser.add_argument_group(f"{cls.__name__} fields", note)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _option_type(f.type)
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name) if defaults is not None else f.default
        help = f"{f.metadata.get('help', '')} (default: {default})".strip().replace("%", "%%")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help)
        else:
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help,
                               metavar={int: "INT", float: "FLOAT", str: "STR"}.get(kind, "STR|none"))


def config_overrides(args: argparse.Namespace, cls=TrainConfig) -> Dict:
    """The ``cls`` fields given on the command line, by field name."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m emformer_edu.train",
        description="Train a small streaming Emformer RNN-T on emformer_edu's synthetic speech, on eSpeak NG "
                    "sentences (--corpus spoken; a CPU is enough), or on real speech on your disk "
                    "(--corpus librispeech --root DIR, or --corpus manifest --train-manifest TSV; never downloaded).",
    )
    run = p.add_argument_group("run")
    run.add_argument("--out", help="directory for checkpoint.pt and history.json (default: runs/NAME)")
    run.add_argument("--resume", metavar="CHECKPOINT",
                     help="continue from this checkpoint; settings come from it unless given here")
    run.add_argument("--export", metavar="DIR", help="also write the inference files (weights, stats, config) here")
    run.add_argument("--name", help="file name prefix of the exported files (default: toy for the synthetic corpus, "
                                     "the corpus's name for the others)")
    run.add_argument("--checkpoint-every", type=int, default=0, metavar="INT",
                     help="steps between checkpoints, 0: at the end only (default: 0)")
    run.add_argument("--model-config", metavar="JSON",
                     help="file with EmformerRNNTConfig fields overriding EmformerRNNTConfig.toy()'s")
    run.add_argument("--threads", type=int, default=None, metavar="INT",
                     help="torch intra-op threads (default: torch's choice); use 1 on a busy machine")
    run.add_argument("--no-progress", action="store_true", help="no progress bar; one line per evaluation instead")
    run.add_argument("--device", default="cpu", metavar="DEVICE",
                     help="where the model trains: cpu or cuda (default: cpu). Under torchrun, cuda gives process "
                          "LOCAL_RANK the GPU cuda:LOCAL_RANK and the processes talk through NCCL (gloo on cpu)")
    add_config_options(p, TrainConfig, note="with --resume, the ones given override the checkpoint's")
    add_config_options(p, RecordedCorpusConfig, note="--corpus librispeech or manifest: the tokens")
    add_config_options(p, LibriSpeechConfig, skip=SHARED,
                       note="--corpus librispeech: where the data is (download=False: LibriSpeech/<subset>/ must be "
                            "on disk)")
    add_config_options(p, ManifestConfig, skip=SHARED, note="--corpus manifest: the recordings, listed in TSV files")
    add_config_options(p, EmformerRNNTConfig, defaults=_toy("synthetic"),
                       note="the model: EmformerRNNTConfig.toy() with these fields replaced (after --model-config); "
                            "its num_symbols follows --corpus and --tokenizer (synthetic 21, characters 29, "
                            "sentencepiece --sentencepiece-vocab-size + 1)")
    return p


def _toy(corpus: str, settings=None) -> EmformerRNNTConfig:
    """``EmformerRNNTConfig.toy()`` sized for ``corpus``'s vocabulary (with ``settings``: its tokenizer's)."""
    return EmformerRNNTConfig.toy(corpora.num_symbols(corpus, corpora.corpus_config(corpus, settings)))


def _model_config(path: Optional[str], overrides: Dict, corpus: str = "synthetic", settings=None) -> EmformerRNNTConfig:
    """The toy model for ``corpus`` (and the tokenizer of its ``settings``), with the fields of the JSON file at
    ``path`` (if any), then ``overrides``, replaced."""
    from_file = {} if path is None else read_json(path, "model config")
    return EmformerRNNTConfig.from_dict({**dataclasses.asdict(_toy(corpus, settings)), **from_file, **overrides})


def _flags(names) -> str:
    return ", ".join("--" + k.replace("_", "-") for k in names)


def _corpus_overrides(args: argparse.Namespace, corpus: str) -> Dict:
    """The corpus settings given on the command line; ``ValueError`` for one of another corpus."""
    shared = config_overrides(args, RecordedCorpusConfig)
    if shared and corpus not in CORPUS_SETTINGS:
        raise ValueError(f"{_flags(shared)}: settings of the corpora read from disk ({', '.join(CORPUS_SETTINGS)}); "
                         f"the {corpus!r} corpus has its own tokens.")
    given = dict(shared)
    for name, cls in CORPUS_SETTINGS.items():
        own = {k: v for k, v in config_overrides(args, cls).items() if k not in SHARED}
        if own and name != corpus:
            raise ValueError(f"{_flags(own)}: settings of --corpus {name}, not of the {corpus!r} corpus.")
        given.update(own)
    return given


def _print_evaluations(event: TrainEvent) -> None:
    """Callback for ``--no-progress``: one line per evaluation, nothing per step."""
    if event.kind == "eval":
        print(event.summary(), file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> Trainer:
    """Command-line entry point; returns the trainer (handy in tests).

    Started by ``torchrun``, it joins the process group first (gloo) and leaves it at the end.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    env = distributed.init(args.device)  # SINGLE (nothing done) unless torchrun started this process
    clean = False
    try:
        trainer = _main(parser, args, env)
        clean = True
    finally:
        if env.is_distributed or distributed.launched_by_torchrun():
            distributed.shutdown(clean)
    return trainer


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace, env: distributed.DistEnv) -> Trainer:
    say = env.is_main  # rank 0 alone prints and writes files
    overrides, model_overrides = config_overrides(args), config_overrides(args, EmformerRNNTConfig)
    if args.resume and (args.model_config or model_overrides):
        parser.error("--model-config and model options cannot change a resumed model: its config comes from the "
                     "checkpoint.")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = distributed.device_for(args.device, env)
    started = time.perf_counter()
    callback = _print_evaluations if args.no_progress and say else None
    if args.resume:
        corpus_overrides = {k: v for cls in CORPUS_SETTINGS.values() for k, v in config_overrides(args, cls).items()}
        trainer = Trainer.resume(args.resume, callback=callback, progress=not args.no_progress, device=device,
                                 corpus_overrides=corpus_overrides, **overrides)
    else:
        try:
            config = TrainConfig(**overrides)
            corpus_overrides = _corpus_overrides(args, config.corpus)
            settings = CORPUS_SETTINGS[config.corpus](**corpus_overrides) if config.corpus in CORPUS_SETTINGS \
                else None
            model_config = _model_config(args.model_config, model_overrides, config.corpus, settings)
            distributed.check_batch_size(config.batch_size, env.world_size)
        except ValueError as err:  # a bad option value: say so with the usage, as argparse does
            if not say:
                raise SystemExit(2)  # rank 0 says why
            parser.error(str(err))
        trainer = Trainer(config, model_config, settings, callback=callback, progress=not args.no_progress,
                          device=device)
    name = args.name or ("toy" if trainer.config.corpus == "synthetic" else trainer.config.corpus)
    out = args.out or os.path.join("runs", name)
    where = "" if device.type == "cpu" else f" on {device}"
    processes = f" on {env.world_size} processes ({trainer.config.batch_size // env.world_size} utterances " \
                f"each per step)" if env.is_distributed else ""
    if say:
        print(f"model: {sum(p.numel() for p in trainer.model.parameters())} parameters; data ready in "
              f"{time.perf_counter() - started:.1f} s{where}{processes}", file=sys.stderr)
    checkpoint = os.path.join(out, "checkpoint.pt")
    history = trainer.fit(checkpoint=checkpoint, checkpoint_every=args.checkpoint_every)
    if not say:
        return trainer
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(history, f, indent=2)
    wall = time.perf_counter() - started
    last = history[-1]
    scores = (f"TER {100 * last['ter']:.2f}%" if "wer" not in last
              else f"CER {100 * last['cer']:.2f}%, WER {100 * last['wer']:.2f}%")
    print(f"done: step {trainer.step}, held-out greedy {scores}, wall time {wall:.0f} s; checkpoint {checkpoint}",
          file=sys.stderr)
    if args.export:
        paths = export_assets(trainer, args.export, name, extra={"wall_time_s": round(wall, 1)})
        print("exported " + ", ".join(paths.values()), file=sys.stderr)
    return trainer
