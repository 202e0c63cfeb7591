"""Data: log-mel features as torchaudio computes them, and corpora with exact token alignments.

Modules: ``log_mel`` (constants, piecewise log, GlobalStats, waveform checks), ``features``
(FeatureExtractor, compute_global_stats, StreamingFeatureExtractor), ``corpus`` (Vocabulary,
Utterance, batching), ``synthetic_config`` (SyntheticConfig, Speaker and their limits) and
``synthetic`` (the synthetic speech corpus); ``espeak`` (a ctypes binding to eSpeak NG), ``speech``
(``speak()``: words and phonemes with exact spans), ``lexicon`` and ``spoken`` (a spoken-word corpus
with a speaker- and sentence-independent test split, heard under the listening ``CONDITIONS``);
``recordings`` (audio files and transcripts as utterances, decoded with soundfile), ``librispeech`` and
``manifest`` (real corpora on the learner's disk, never downloaded) and ``sentencepiece_vocab``
(subword tokens).
"""
from .corpus import Alignment, Collate, SyntheticBatch, Utterance, Vocabulary, collate
from .features import FeatureExtractor, GlobalStats, StreamingFeatureExtractor, compute_global_stats
from .synthetic import SpeechSynthesizer, SyntheticConfig, SyntheticSpeechDataset
from .lexicon import LEXICON
from .speech import CHARACTERS, Spans, SpokenUtterance, Voice, character_vocabulary, speak
from .spoken import CONDITIONS, SpokenConfig, SpokenDataset, listening_condition
from .recordings import RecordedSpeech, RecordedUtterance, Recording, read_audio
from .librispeech import LibriSpeechConfig, read_librispeech
from .manifest import ManifestConfig, read_manifest
from .sentencepiece_vocab import SentencePieceVocabulary
