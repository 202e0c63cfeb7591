"""emformer_edu: torchaudio's Emformer RNN-T, rebuilt one readable component at a time.

Shape notation used in every docstring: B batch, T frames, U target length, V vocabulary,
D model dim, R right context, M memory slots, S summary vectors.
"""
from .attention import EmformerAttention, match_torchaudio_softmax
from .emformer import Emformer, EmformerState, describe_state, to_torchaudio_state
from .inspection import record
from .layer import EmformerLayer, LayerState
from .masks import AttentionMask, inference_mask, key_padding_mask, training_mask
from .transducer import RNNT, emformer_rnnt_base, emformer_rnnt_model
from .compat import from_torchaudio, torchaudio_twin
from . import exercises, viz

__version__ = "0.1.0"
from . import features, synthetic
from .features import FeatureExtractor, GlobalStats, StreamingFeatureExtractor, compute_global_stats
from .synthetic import Collate, SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset, Vocabulary, collate
from .loss import alignment_paths, alpha_beta, edge_posteriors, lattice_log_probs, rnnt_loss, rnnt_loss_bruteforce, rnnt_loss_reference
from .lattice import Lattice, LatticeAlignment, forced_align, lattice_tables, token_frames, utterance_lattice, viterbi
from . import decoding, evaluation, pretrained
from .decoding import GreedyState, Hypothesis, RNNTBeamSearch, TokenTimestamp, greedy_decode, greedy_infer, greedy_search, token_timestamps
from .evaluation import (EmissionDelays, TERResult, compare_alignments, decode_streaming, edit_distance, emission_delays,
                         evaluate, forced_alignment_frames, streaming_chunks, token_error_rate)
from .pretrained import Pretrained


def __getattr__(name):
    # The trainer is loaded on first use, so `python -m emformer_edu.train` does not import itself twice.
    if name in ("train", "Trainer", "TrainConfig", "toy_model_config", "WidgetProgress"):
        import importlib

        module = importlib.import_module(".train", __name__)
        return module if name == "train" else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
