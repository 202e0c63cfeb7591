"""The Emformer encoder, in the order of the course: segments, masks, memory bank, attention, layer, Emformer."""
from .attention import EmformerAttention, match_torchaudio_softmax
from .emformer import Emformer, EmformerState, describe_state, to_torchaudio_state
from .layer import EmformerLayer, LayerState
from .masks import AttentionMask, Block, inference_mask, key_padding_mask, training_mask
from .memory_bank import push_memory, squash_memory, summarize_segments
from .probe import Probe
from .segments import SegmentSpan, num_segments, segment_spans, split_utterance_and_right_context
