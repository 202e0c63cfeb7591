"""The RNN-T algorithms: the alignment lattice, the loss, and decoding (greedy and beam search)."""
from .beam_search import Hypothesis, RNNTBeamSearch
from .ctc import ctc_collapse, ctc_greedy_decode, ctc_logits, ctc_loss
from .greedy import GreedyState, greedy_decode, greedy_infer, greedy_search
from .lattice import (
    Lattice, LatticeAlignment, alignment_paths, delay_penalty_offsets, expected_emission_frames, forced_align,
    lattice_log_probs, lattice_tables, log_alpha, log_beta, path_log_probs, token_frames, utterance_lattice, viterbi,
)
from .loss import rnnt_loss_bruteforce, rnnt_loss_reference
from .loss_fast import alpha_beta, edge_posteriors, rnnt_loss
from .recognize import decode, decode_streaming
from .timestamps import TokenTimestamp, token_timestamps
