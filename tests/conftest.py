"""Shared test configurations: small Emformer RNN-T models that together cover every factory option."""
import dataclasses

import pytest
import torch

import emformer_edu
from emformer_edu import EmformerRNNTConfig
from emformer_edu.data import espeak

# Together: memory on/off, left context 0/positive, right context 0/positive, stride 1/2/4,
# every activation, every init strategy, tanh on/off, LSTM layer norm on/off.
CONFIGS = {
    "s1_plain": dict(segment_length=3, right_context_length=0, time_reduction_stride=1,
                     transformer_left_context_length=0, transformer_max_memory_size=0,
                     transformer_activation="relu", transformer_weight_init_scale_strategy="depthwise",
                     transformer_tanh_on_mem=False, lstm_layer_norm=False),
    "s2_mem_lc_rc": dict(segment_length=6, right_context_length=4, time_reduction_stride=2,
                         transformer_left_context_length=4, transformer_max_memory_size=3,
                         transformer_activation="gelu", transformer_weight_init_scale_strategy="constant",
                         transformer_tanh_on_mem=True, lstm_layer_norm=True),
    "s4_mem_rc": dict(segment_length=8, right_context_length=4, time_reduction_stride=4,
                      transformer_left_context_length=0, transformer_max_memory_size=2,
                      transformer_activation="silu", transformer_weight_init_scale_strategy=None,
                      transformer_tanh_on_mem=False, lstm_layer_norm=True),
    "s2_lc_rc": dict(segment_length=4, right_context_length=2, time_reduction_stride=2,
                     transformer_left_context_length=3, transformer_max_memory_size=0,
                     transformer_activation="relu", transformer_weight_init_scale_strategy="depthwise",
                     transformer_tanh_on_mem=True, lstm_layer_norm=False),
    "s1_mem_lc_rc": dict(segment_length=4, right_context_length=3, time_reduction_stride=1,
                         transformer_left_context_length=5, transformer_max_memory_size=1,
                         transformer_activation="gelu", transformer_weight_init_scale_strategy=None,
                         transformer_tanh_on_mem=True, lstm_layer_norm=True),
}


# Small widths (odd ones, so no two dimensions coincide) on top of the tiny preset.
SMALL = EmformerRNNTConfig.tiny(num_symbols=9).replace(
    input_dim=6, encoding_dim=12, time_reduction_input_dim=4, transformer_ffn_dim=10, transformer_num_layers=3,
    symbol_embedding_dim=7,
)


def factory_kwargs(name, dropout=0.0, **overrides):
    """Full ``emformer_rnnt_model`` keyword arguments for the named config (small dims)."""
    return {**dataclasses.asdict(SMALL), **CONFIGS[name], "transformer_dropout": dropout, "lstm_dropout": dropout,
            **overrides}


def make_pair(name, seed=0, dropout=0.0, **overrides):
    """(emformer_edu model, torchaudio model) with identical float64 weights, in eval mode.

    The edu model reproduces torchaudio's float32 softmax so float64 numbers agree to ~1e-15.
    """
    torch.manual_seed(seed)
    edu = emformer_edu.emformer_rnnt_model(**factory_kwargs(name, dropout, **overrides)).double().eval()
    # Random, non-trivial LayerNorm affine parameters too (they start at 1 and 0).
    with torch.no_grad():
        for p in edu.parameters():
            p.add_(0.1 * torch.randn_like(p))
    emformer_edu.match_torchaudio_softmax(edu)
    return edu, emformer_edu.torchaudio_twin(edu)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use tiny models: one intra-op thread is fastest, and steady on a loaded 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=list(CONFIGS))
def config_name(request):
    return request.param


def _espeak_available() -> bool:
    try:
        espeak.find_library()
        return True
    except espeak.EspeakNotFoundError:
        return False


# requirements.txt installs espeakng-loader, so CI always runs these; a bare environment skips them, saying why.
needs_espeak = pytest.mark.skipif(not _espeak_available(),
                                  reason="eSpeak NG not installed (pip install espeakng-loader)")
