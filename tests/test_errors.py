"""Bad configuration and bad calls raise ValueError with the parameter and the expected values."""
import pytest
import torch

import emformer_edu
from emformer_edu.checks import check_finite
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
        # Gaps that torchaudio leaves open, each closed once in EmformerRNNTConfig.
        (dict(num_lstm_layers=-1), r"num_lstm_layers must be an integer >= 1, got -1"),
        (dict(num_lstm_layers=0), r"num_lstm_layers must be an integer >= 1, got 0"),
        (dict(transformer_num_heads=0), r"transformer_num_heads must be an integer >= 1, got 0"),
        (dict(transformer_num_heads=-2), r"transformer_num_heads must be an integer >= 1, got -2"),
        (dict(transformer_ffn_dim=-4), r"transformer_ffn_dim must be an integer >= 1, got -4"),
        (dict(symbol_embedding_dim=-7), r"symbol_embedding_dim must be an integer >= 1, got -7"),
        (dict(time_reduction_input_dim=0), r"time_reduction_input_dim must be an integer >= 1, got 0"),
        (dict(lstm_layer_norm_epsilon=-1), r"lstm_layer_norm_epsilon must be > 0 .*got -1"),
        (dict(lstm_layer_norm_epsilon=0.0), r"lstm_layer_norm_epsilon must be > 0"),
        (dict(num_symbols=0), r"num_symbols must be an integer >= 2 \(at least one token plus the blank\), got 0"),
        (dict(num_symbols=1), r"num_symbols must be an integer >= 2"),
        (dict(transformer_num_layers=0), r"transformer_num_layers must be an integer >= 1, got 0"),
        (dict(transformer_dropout=1.5), r"transformer_dropout must be a probability in \[0, 1\], got 1.5"),
        (dict(lstm_dropout=-0.1), r"lstm_dropout must be a probability in \[0, 1\]"),
        (dict(encoding_dim=0), r"encoding_dim must be an integer >= 1, got 0"),
        (dict(input_dim=2.5), r"input_dim must be an integer >= 1, got 2.5"),
    ],
)
def test_invalid_configuration(overrides, match):
    with pytest.raises(ValueError, match=match):
        emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc", **overrides))
    # The factory and the dataclass are one check, not two copies of it.
    with pytest.raises(ValueError, match=match):
        emformer_edu.EmformerRNNTConfig(**factory_kwargs("s2_mem_lc_rc", **overrides))


def test_invalid_emformer_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        emformer_edu.Emformer(8, 2, 8, 1, 4, activation="elu")
    with pytest.raises(ValueError, match=r"num_heads \(3\) must divide the model dimension input_dim \(8\)"):
        emformer_edu.Emformer(8, 3, 8, 1, 4)
    with pytest.raises(ValueError, match="segment_length must be an integer >= 1"):
        emformer_edu.Emformer(8, 2, 8, 1, 0)
    with pytest.raises(ValueError, match="num_heads must be an integer >= 1, got 0"):
        emformer_edu.Emformer(8, 0, 8, 1, 4)
    with pytest.raises(ValueError, match="ffn_dim must be an integer >= 1, got -1"):
        emformer_edu.Emformer(8, 2, -1, 1, 4)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\]"):
        emformer_edu.Emformer(8, 2, 8, 1, 4, dropout=2.0)


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


def test_empty_batch_is_named(model):
    with pytest.raises(ValueError, match=r"sources is an empty batch \(shape \(0, 22, 6\)\): B must be at least 1"):
        model.transcribe(torch.zeros(0, 22, 6), torch.zeros(0))
    with pytest.raises(ValueError, match="empty batch"):
        model.transcribe_streaming(torch.zeros(0, 10, 6), torch.zeros(0), None)


@pytest.mark.parametrize("where", ["transcribe", "transcribe_streaming", "emformer"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_features_are_refused(model, where, value):
    x = torch.randn(1, 10, 6)
    x[0, 3, 2] = value
    kind = "NaN" if value != value else "inf"
    with pytest.raises(ValueError, match=rf"non-finite value.*first: {kind} at index \(0, 3, 2\)"):
        if where == "transcribe":
            model.transcribe(torch.cat([x, x], 1), torch.tensor([20]))
        elif where == "transcribe_streaming":
            model.transcribe_streaming(x, torch.tensor([10]), None)
        else:
            emformer_edu.Emformer(8, 2, 8, 1, 4)(torch.cat([x, x], 2)[..., :8], torch.tensor([10]))


@pytest.mark.parametrize("other", [dict(transformer_max_memory_size=2), dict(transformer_left_context_length=2),
                                   dict(time_reduction_input_dim=6)])
def test_state_from_a_model_of_another_shape_is_named(model, other):
    """A state from another memory size, left context or model width: named, not a raw size mismatch."""
    torch.manual_seed(0)
    donor = emformer_edu.emformer_rnnt_model(**factory_kwargs("s2_mem_lc_rc", **other)).eval()
    _, _, state = donor.transcribe_streaming(torch.randn(1, 10, 6), torch.tensor([10]), None)
    with pytest.raises(ValueError, match=r"states\[0\]\.(memory|left_context_key) has shape .* comes from a model "
                                         r"with another configuration"):
        model.transcribe_streaming(torch.randn(1, 10, 6), torch.tensor([10]), state)


def test_finite_values_whose_sum_overflows_are_accepted():
    """check_finite's quick sum must not mistake large finite values for inf; opposite infs still count."""
    check_finite(torch.full((10,), 3e38))
    x = torch.zeros(4)
    x[1], x[2] = float("inf"), -float("inf")  # their sum is NaN, the values are infs
    with pytest.raises(ValueError, match=r"2 non-finite value\(s\) \(first: inf at index \(1,\)"):
        check_finite(x)
