"""The transducer: time reduction, predictor and joiner around the Emformer, and the RNN-T factories."""
from .compat import from_torchaudio, torchaudio_twin
from .joiner import Joiner
from .model import RNNT, EmformerEncoder, build_model, emformer_rnnt_base, emformer_rnnt_model
from .predictor import LayerNormLSTM, Predictor
from .streaming import streaming_chunks
from .time_reduction import TimeReduction
