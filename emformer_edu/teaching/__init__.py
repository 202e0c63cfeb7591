"""Teaching aids: the recorder, figures by chapter, widgets and the exercises' checks.

Nothing in the model imports this package; it reaches into the model only through forward hooks.
"""
from . import exercises, viz
from .recorder import attention_mass, memory_provenance, predictor_trace, record, trace_shapes
