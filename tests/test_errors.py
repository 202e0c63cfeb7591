"""Bad configuration and bad calls raise ValueError with the parameter and the expected values."""
import pytest
import torch

import emformer_edu
from conftest import factory_kwargs


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(transformer_activation="tanh"), r"transformer_activation must be one of \('relu', 'gelu', 'silu'\), got 'tanh'"),
        (dict(transformer_weight_init_scale_strategy="xavier"), r"transformer_weight_init_scale_strategy must be one of \('depthwise', 'constant', None\)"),
        (dict(transformer_num_heads=3), r"transformer_num_heads \(3\) must divide .* = 8"),
        (dict(transformer_left_context_length=-1), r"transformer_left_context_length must be an integer >= 0"),
        (dict(right_context_length=-2), r"right_context_length must be an integer >= 0"),
        (dict(transformer_max_memory_size=-1), r"transformer_max_memory_size must be an integer >= 0"),
        (dict(segment_length=0), r"segment_length must be an integer >= 1, got 0"),
        (dict(time_reduction_stride=0), r"time_reduction_stride must be an integer >= 1, got 0"),
        (dict(segment_length=7), r"segment_length \(7\) must be a multiple of time_reduction_stride \(2\).*silently floors"),
        (dict(right_context_length=3), r"right_context_length \(3\) must be a multiple of time_reduction_stride \(2\)"),
    ],
)
def test_invalid_configuration(overrides, match):
    with pytest.raises(ValueError, match=match):
        emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc", **overrides))


def test_invalid_emformer_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        emformer_edu.Emformer(8, 2, 8, 1, 4, activation="elu")
    with pytest.raises(ValueError, match=r"num_heads \(3\) must divide the model dimension input_dim \(8\)"):
        emformer_edu.Emformer(8, 3, 8, 1, 4)
    with pytest.raises(ValueError, match="segment_length must be an integer >= 1"):
        emformer_edu.Emformer(8, 2, 8, 1, 0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc")).eval()


def test_streaming_chunk_of_wrong_length(model):
    with pytest.raises(ValueError, match=r"segment_length \+ right_context_length = 6 \+ 4 = 10 input frames in dimension 1, got 12"):
        model.transcribe_streaming(torch.randn(1, 12, 6), torch.tensor([12]), None)


def test_feature_dimension_mismatch(model):
    with pytest.raises(ValueError, match=r"feature dimension must equal input_dim=6, got 5"):
        model.transcribe(torch.randn(1, 22, 5), torch.tensor([22]))
    with pytest.raises(ValueError, match=r"input_dim=6, got 80"):
        model.transcribe_streaming(torch.randn(1, 10, 80), torch.tensor([10]), None)


def test_lengths_out_of_range(model):
    with pytest.raises(ValueError, match=r"must not exceed the tensor's time dimension \(22 frames\), got max 23"):
        model.transcribe(torch.randn(2, 22, 6), torch.tensor([23, 10]))
    with pytest.raises(ValueError, match=r"must be >= 0, got \[-1, 10\]"):
        model.transcribe(torch.randn(2, 22, 6), torch.tensor([-1, 10]))
    with pytest.raises(ValueError, match=r"shape \(B,\) = \(2,\)"):
        model.transcribe(torch.randn(2, 22, 6), torch.tensor([22]))


def test_state_reused_with_other_batch_size(model):
    _, _, state = model.transcribe_streaming(torch.randn(2, 10, 6), torch.tensor([10, 10]), None)
    with pytest.raises(ValueError, match="created for batch size 2, but this chunk has batch size 3"):
        model.transcribe_streaming(torch.randn(3, 10, 6), torch.tensor([10, 10, 10]), state)


def test_targets_out_of_vocabulary(model):
    with pytest.raises(ValueError, match=r"targets must be token ids in \[0, num_symbols=9\)"):
        model(torch.randn(1, 22, 6), torch.tensor([22]), torch.tensor([[0, 9]]), torch.tensor([2]))
