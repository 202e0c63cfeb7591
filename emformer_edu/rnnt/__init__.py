"""The RNN-T algorithms: the alignment lattice, the loss, and decoding (greedy and beam search)."""
from .beam_search import Hypothesis, RNNTBeamSearch
from .greedy import GreedyState, greedy_decode, greedy_infer, greedy_search
from .lattice import Lattice, LatticeAlignment, forced_align, lattice_tables, token_frames, utterance_lattice, viterbi
from .loss import (
    alignment_paths, alpha_beta, edge_posteriors, lattice_log_probs, rnnt_loss, rnnt_loss_bruteforce,
    rnnt_loss_reference,
)
from .recognize import decode, decode_streaming
from .timestamps import TokenTimestamp, token_timestamps
