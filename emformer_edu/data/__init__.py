"""Data: log-mel features as torchaudio computes them, and corpora with exact token alignments."""
from .corpus import Alignment, Collate, SyntheticBatch, Utterance, Vocabulary, collate
from .features import FeatureExtractor, GlobalStats, StreamingFeatureExtractor, compute_global_stats
from .synthetic import SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset
