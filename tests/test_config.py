"""The one config dataclass: presets, the factory's exact signature, and model.config."""
import dataclasses
import inspect

import pytest
import torchaudio

import emformer_edu
from emformer_edu import EmformerRNNTConfig


def test_fields_are_torchaudios_factory_arguments_in_order():
    ours = [f.name for f in dataclasses.fields(EmformerRNNTConfig)]
    assert ours == list(inspect.signature(torchaudio.models.emformer_rnnt_model).parameters)
    assert list(inspect.signature(emformer_edu.emformer_rnnt_model).parameters) == ours


@pytest.mark.parametrize("preset", ["tiny", "toy", "base"])
def test_presets_build_through_the_factory_and_torchaudio(preset):
    cfg = getattr(EmformerRNNTConfig, preset)()
    if preset == "base":
        assert cfg == EmformerRNNTConfig.base(4097)
        assert emformer_edu.emformer_rnnt_base(4097).config == cfg
        return  # 76.7 M parameters: building it twice more would only cost time
    model = emformer_edu.emformer_rnnt_model(**dataclasses.asdict(cfg))
    assert model.config == cfg
    twin = torchaudio.models.emformer_rnnt_model(**dataclasses.asdict(cfg))
    assert list(model.state_dict()) == list(twin.state_dict())


def test_the_toy_preset_is_the_shipped_models_config():
    assert emformer_edu.pretrained.toy().model.config == EmformerRNNTConfig.toy()


def test_replace_validates_again_and_from_dict_names_bad_keys():
    with pytest.raises(ValueError, match=r"segment_length \(6\) must be a multiple of time_reduction_stride \(4\)"):
        EmformerRNNTConfig.toy().replace(segment_length=6)
    values = dataclasses.asdict(EmformerRNNTConfig.tiny())
    assert EmformerRNNTConfig.from_dict(values) == EmformerRNNTConfig.tiny()
    del values["lstm_dropout"]
    values["colour"] = "red"
    with pytest.raises(ValueError, match=r"missing \['lstm_dropout'\], unknown \['colour'\]"):
        EmformerRNNTConfig.from_dict(values)


def test_derived_values():
    cfg = EmformerRNNTConfig.toy()
    assert (cfg.model_dim, cfg.blank) == (128, 20)
