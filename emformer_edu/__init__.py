"""emformer_edu: torchaudio's Emformer RNN-T, rebuilt one readable component at a time.

The sub-packages follow the course (each one imports only those before it):

* ``config``: one validated :class:`EmformerRNNTConfig` with presets;
* ``encoder``: segments, masks, memory bank, attention, layer, Emformer;
* ``transducer``: time reduction, predictor, joiner, the RNN-T and its factories, streaming input;
* ``rnnt``: the alignment lattice, the loss, greedy and beam search;
* ``data``: features and corpora with true alignments (beside the model: neither imports the other);
* ``train``: trainer, checkpoints, command line, metrics, shipped models;
* ``teaching``: recorder, figures, widgets, exercises (the model never imports it).

Shape notation used in every docstring: B batch, T frames, U target length, V vocabulary,
D model dim, R right context, M memory slots, S summary vectors.
"""
from .config import EmformerRNNTConfig
from .encoder import (
    AttentionMask, Emformer, EmformerAttention, EmformerLayer, EmformerState, LayerState, describe_state,
    inference_mask, key_padding_mask, match_torchaudio_softmax, to_torchaudio_state, training_mask,
)
from .transducer import RNNT, emformer_rnnt_base, emformer_rnnt_model, from_torchaudio, streaming_chunks, torchaudio_twin
from .rnnt import (
    GreedyState, Hypothesis, Lattice, LatticeAlignment, RNNTBeamSearch, TokenTimestamp,
    alignment_paths, alpha_beta, decode_streaming, edge_posteriors, forced_align, greedy_decode, greedy_infer,
    greedy_search, lattice_log_probs, lattice_tables, log_alpha, log_beta, rnnt_loss, rnnt_loss_bruteforce,
    rnnt_loss_reference, token_frames, token_timestamps, utterance_lattice, viterbi,
)
from .data import (
    Collate, FeatureExtractor, GlobalStats, SpeechSynthesizer, SpokenConfig, SpokenDataset, SpokenUtterance,
    StreamingFeatureExtractor, SyntheticConfig, SyntheticSpeechDataset, Vocabulary, Voice, collate,
    compute_global_stats, speak,
)
from .data import features, speech, spoken, synthetic
from .train import (
    EmissionDelays, Pretrained, TERResult, compare_alignments, edit_distance, emission_delays, evaluate, pretrained,
    token_error_rate,
)
from .teaching import exercises, record, viz
from .runtime import single_thread

__version__ = "0.1.0"
