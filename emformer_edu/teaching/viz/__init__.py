"""Figures for the notebooks, one module per chapter. Plot functions only draw: every tensor
they show comes from a library computation (a recording, the lattice, a decoder)."""
from .audio import chunk_figure, utterance_figure
from .decoding import emission_figure
from .heatmap import KIND_NAMES, OKABE_ITO, REGION_COLOURS, heatmap
from .lattice import (
    alignment_paths_figure, lattice_figure, plot_lattice, posterior_panels_figure, utterance_lattice_figure,
)
from .masks import mask_assembly_figure, mask_comparison_figure, mask_figure, plot_attention, plot_mask
from .memory import attention_mass_figure, difference_figure, memory_bank_figure, state_figure
from .transducer import joint_figure, predictor_figure, time_reduction_figure
