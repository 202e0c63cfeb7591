"""Data: log-mel features as torchaudio computes them, and corpora with exact token alignments.

Modules: ``log_mel`` (constants, piecewise log, GlobalStats, waveform checks), ``features``
(FeatureExtractor, compute_global_stats, StreamingFeatureExtractor), ``corpus`` (Vocabulary,
Utterance, batching), ``synthetic_config`` (SyntheticConfig, Speaker and their limits) and
``synthetic`` (the synthetic speech corpus).
"""
from .corpus import Alignment, Collate, SyntheticBatch, Utterance, Vocabulary, collate
from .features import FeatureExtractor, GlobalStats, StreamingFeatureExtractor, compute_global_stats
from .synthetic import SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset
