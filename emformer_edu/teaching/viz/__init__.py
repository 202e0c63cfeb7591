"""Figures for the notebooks, one module per chapter. Plot functions only draw: every tensor
they show comes from a library computation (a recording, the lattice, a decoder)."""
from .audio import (
    chunk_figure, frame_waits_ms, latency_figure, normalisation_figure, running_normalisation_error, utterance_figure,
)
from .decoding import beam_hypotheses_figure, delay_histogram_figure, emission_figure
from .heatmap import KIND_NAMES, MASKED_COLOUR, OKABE_ITO, REGION_COLOURS, heatmap
from .lattice import (
    alignment_paths_figure, alpha_mass_figure, diagonal_normalised, lattice_figure, logit_gradient_figure,
    next_token_table, plot_lattice, posterior_panels_figure, truth_lattice_figure, utterance_lattice_figure,
)
from .masks import (
    attention_heads_figure, mask_assembly_figure, mask_comparison_figure, mask_figure, plot_attention, plot_mask,
    segment_rows, segment_rows_figure,
)
from .memory import (
    attention_mass_average_figure, attention_mass_figure, difference_figure, mean_attention_mass, memory_bank_figure,
    state_figure,
)
from .layer_diagram import heads_by_layer_figure, layer_block_diagram, memory_dataflow_figure, memory_reads
from .receptive_field import mask_rewiring_figure, prefix_difference_figure, receptive_field_figure
from .streaming import chunk_ready_ms, streaming_timeline_figure
from .transducer import greedy_path, greedy_path_figure, joint_figure, predictor_figure, time_reduction_figure
from .latency import (cer_latency_figure, cer_standard_error, emissions_figure, latency_table, variant_emissions,
                      variant_figure)
from .pruned import band_figure, memory_growth_figure
