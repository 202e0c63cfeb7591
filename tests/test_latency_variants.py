"""The shipped latency variants (notebook 10) are tied to the code: their configs are what VARIANTS says,
their weights reproduce the recorded per-sentence errors, and the recorded latencies follow from the configs."""
import dataclasses

import pytest
import torch

from conftest import needs_espeak
from emformer_edu.train import pretrained, variants
from emformer_edu.train.metrics import edit_distance, evaluate
from emformer_edu.transducer.streaming import latency_ms

RESULTS = variants.load_results()


def test_every_variant_is_shipped_and_measured_the_same_way():
    assert list(RESULTS) == [name for name in variants.VARIANTS if name in RESULTS]
    assert set(RESULTS) == set(variants.VARIANTS), "a variant has no checkpoint and results"
    rows = list(RESULTS.values())
    assert len({(r["utterances"], r["seed"]) for r in rows}) == 1  # the same held-out sentences for all


@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_checkpoint_has_the_variant_geometry_and_recorded_latency(name):
    pre = variants.load_variant(name)
    model_config, train_config = variants.variant_configs(name)
    assert pre.model.config == model_config
    assert pre.config["training"]["fastemit_lambda"] == train_config.fastemit_lambda
    assert pre.config["training"]["steps_done"] == train_config.steps
    c, row = pre.model.config, RESULTS[name]
    assert row["latency_ms"] == latency_ms(c.segment_length, c.right_context_length, c.time_reduction_stride,
                                           c.transformer_left_context_length)
    # Everything but the streaming geometry and the fine-tuning is the shipped model's.
    shipped = pretrained.spoken().model.config
    differs = {f.name for f in dataclasses.fields(c) if getattr(c, f.name) != getattr(shipped, f.name)}
    assert differs == set(variants.VARIANTS[name]["model"])


@needs_espeak
@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_weights_reproduce_the_recorded_errors(name):
    pre, row = variants.load_variant(name), RESULTS[name]
    data = pre.held_out(row["utterances"], row["seed"])
    first = [data[i] for i in range(4)]
    with torch.no_grad():
        result = evaluate(pre.model, first, pre.feature_extractor, pre.blank, beam_width=None, streaming=True,
                          vocab=pre.vocab)
    assert [edit_distance(u.text, h) for u, h in zip(first, result.hyp_texts)] == row["first_char_errors"][:4]


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown variant"):
        variants.load_variant("tiny segments")
    with pytest.raises(ValueError, match="unknown variant"):
        variants.variant_configs("tiny segments")
