"""Latency variants of the spoken model (notebook 10): the same recogniser with another streaming geometry.

``python -m emformer_edu.train.variants`` fine-tunes the shipped spoken model (``pretrained.spoken()``)
once per entry of :data:`VARIANTS`, each for the same number of steps on the same fresh training
sentences, then measures each on the same held-out sentences and writes the small checkpoints (float16
weights) and ``results.json`` to ``emformer_edu/train/assets/variants/``.

Why fine-tune rather than train from scratch: an Emformer's weights do not depend on the segment
length, the right context or the memory size (they only change the masks), so every variant can
start from the shipped weights and adapt in minutes; the baseline (the shipped geometry) gets the
same fine-tuning, so the variants differ only in what the table's columns name.

Measured per variant, streaming greedy on ``--utterances`` held-out sentences (unseen voices):

* the algorithmic latency of :func:`~emformer_edu.transducer.streaming.latency_ms` (segment and look-ahead);
* the delay from each correctly recognised word's true end (eSpeak NG's) to its last character
  (:func:`~emformer_edu.train.latency.word_end_delays`): when the model emitted it, and when a
  streaming recogniser holds it;
* the character and word error rates.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from importlib import resources
from typing import Dict, List, Optional

import torch

from ..config import EmformerRNNTConfig
from ..transducer.streaming import latency_ms
from . import pretrained
from .checkpoints import export_assets
from .config import TrainConfig
from .latency import word_end_delays
from .metrics import edit_distance, evaluate
from .pretrained import HELD_OUT_SEED, Pretrained, load_exported
from .trainer import Trainer

__all__ = ["VARIANTS", "variant_configs", "fine_tune", "measure", "load_variant", "load_results", "main"]

# name: (changes to the shipped model's config, changes to the fine-tuning recipe)
VARIANTS: Dict[str, Dict[str, Dict]] = {
    "baseline": {"model": {}, "train": {}},
    "short segments": {"model": {"segment_length": 8}, "train": {}},
    "no look-ahead": {"model": {"right_context_length": 0}, "train": {}},
    "no memory": {"model": {"transformer_max_memory_size": 0}, "train": {}},
    "FastEmit": {"model": {}, "train": {"fastemit_lambda": 0.05}},
}
# The fine-tuning recipe every variant shares: fresh sentences (train_seed 11: not the shipped run's),
# a short warm-up and a cosine decay from a peak well below the shipped run's 1.4e-3.
RECIPE = dict(corpus="spoken", steps=400, batch_size=16, lr=4e-4, warmup_steps=40, train_seed=11, valid_seed=1,
              num_valid=50, stats_utterances=1, eval_every=0, num_workers=1, length_buckets=2)
DIRECTORY = "variants"  # under emformer_edu/train/assets
RESULTS = "results.json"


def _file_name(name: str) -> str:
    return name.replace(" ", "_").lower()


def variant_configs(name: str, base: Optional[Pretrained] = None):
    """``(model config, train config)`` of variant ``name``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; variants: {list(VARIANTS)}.")
    base = pretrained.spoken() if base is None else base
    model = EmformerRNNTConfig.from_dict(base.config["model"]).replace(**VARIANTS[name]["model"])
    # The shipped run's objective carries on (its auxiliary CTC weight; older files have none).
    shipped = {"ctc_weight": base.config.get("training", {}).get("ctc_weight", 0.0)}
    train = TrainConfig(**{**RECIPE, **shipped, **VARIANTS[name]["train"]})
    return model, train


def fine_tune(name: str, steps: Optional[int] = None, progress: bool = False) -> Trainer:
    """Fine-tune the shipped spoken model as variant ``name`` (its feature statistics kept)."""
    base = pretrained.spoken()
    model_config, config = variant_configs(name, base)
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    trainer = Trainer(config, model_config, base.spoken_config, progress=progress,
                      global_stats=base.feature_extractor.global_stats)
    trainer.model.load_state_dict(base.model.state_dict())  # same shapes: geometry lives in the masks only
    trainer.fit()
    return trainer


def measure(model_pretrained: Pretrained, num_utterances: int = 100, seed: int = HELD_OUT_SEED) -> Dict:
    """The numbers of one row of notebook 10's table (streaming greedy, held-out voices)."""
    pre = model_pretrained
    data = pre.held_out(num_utterances, seed)
    utterances = [data[i] for i in range(len(data))]
    c = pre.model.config
    result = evaluate(pre.model, utterances, pre.feature_extractor, pre.blank, beam_width=None, streaming=True,
                      vocab=pre.vocab)
    delays = word_end_delays(pre.model, utterances, pre.feature_extractor, pre.blank, pre.vocab, result=result)
    q = lambda x: round(float(torch.quantile(x, 0.9)), 1)  # noqa: E731
    return {
        "segment_length": c.segment_length, "right_context_length": c.right_context_length,
        "max_memory_size": c.transformer_max_memory_size,
        "latency_ms": latency_ms(c.segment_length, c.right_context_length, c.time_reduction_stride,
                                 c.transformer_left_context_length),
        "cer": round(result.cer, 5), "wer": round(result.wer, 5),
        "emitted_ms": {"mean": round(float(delays.emitted_ms.mean()), 1), "p90": q(delays.emitted_ms)},
        "available_ms": {"mean": round(float(delays.available_ms.mean()), 1), "p90": q(delays.available_ms)},
        "words_right": delays.words, "words": delays.total_words,
        # Per-sentence character errors and lengths: error bars, paired comparisons, and what the test recomputes.
        "char_errors": [edit_distance(u.text, h) for u, h in zip(utterances, result.hyp_texts)],
        "ref_chars": [len(u.text) for u in utterances],
        "first_char_errors": [edit_distance(u.text, h) for u, h in zip(utterances[:10], result.hyp_texts[:10])],
        "utterances": num_utterances, "seed": seed,
    }


def _assets_directory() -> str:
    with resources.as_file(resources.files("emformer_edu.train") / "assets" / DIRECTORY) as d:
        return str(d)


def load_variant(name: str, directory: Optional[str] = None) -> Pretrained:
    """The shipped (or ``directory``'s) checkpoint of variant ``name``, in float32 and eval mode."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; variants: {list(VARIANTS)}.")
    return load_exported(directory or _assets_directory(), _file_name(name))


def load_results(directory: Optional[str] = None) -> Dict[str, Dict]:
    """``{variant: measured row}`` as :func:`measure` wrote it, in :data:`VARIANTS` order."""
    with open(os.path.join(directory or _assets_directory(), RESULTS)) as f:
        return json.load(f)


def _export_half(trainer: Trainer, directory: str, name: str, extra: Dict) -> None:
    # float16 halves the files (the weights of a fine-tuned variant need no more); loading casts back.
    paths = export_assets(trainer, directory, _file_name(name), extra=extra)
    state = torch.load(paths["weights"], map_location="cpu")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, paths["weights"])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emformer_edu.train.variants", description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), help="which variants (default: all)")
    p.add_argument("--steps", type=int, default=RECIPE["steps"], help="fine-tuning steps per variant")
    p.add_argument("--utterances", type=int, default=100, help="held-out sentences measured per variant")
    p.add_argument("--out", default=None, help="directory for checkpoints and results (default: the package's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--measure-only", action="store_true", help="re-measure the saved checkpoints, no fine-tuning")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = a.out or _assets_directory()
    results = load_results(out) if os.path.exists(os.path.join(out, RESULTS)) else {}
    for name in a.variants:
        if a.measure_only:
            took = results[name]["fine_tune_seconds"]
        else:
            start = time.perf_counter()
            trainer = fine_tune(name, a.steps)
            took = time.perf_counter() - start
            _export_half(trainer, out, name, extra={"variant": name, "fine_tuned_from": "pretrained.spoken()",
                                                     "fine_tune_seconds": round(took, 1)})
        row = measure(load_variant(name, out), a.utterances)
        row["fine_tune_seconds"] = round(took, 1)
        results[name] = row
        print(f"{name}: fine-tuned {a.steps} steps in {took:.0f} s; CER {100 * row['cer']:.1f} %, "
              f"algorithmic latency {row['latency_ms']['average']:.0f} ms average, word ends available "
              f"{row['available_ms']['mean']:.0f} ms after the true end on average", file=sys.stderr, flush=True)
    ordered = {n: results[n] for n in VARIANTS if n in results}
    with open(os.path.join(out, RESULTS), "w") as f:
        json.dump(ordered, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
