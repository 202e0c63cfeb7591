"""What every corpus shares: the vocabulary, utterances with true alignments, and batching.

Alignment convention. Token k occupies samples ``[start_sample[k], end_sample[k])``
(end exclusive). Frames use the 10 ms hop: ``frame = sample // 160`` applied to both
ends, so the frame span ``[start_frame[k], end_frame[k])`` is half-open too, spans of
consecutive tokens never overlap, and each frame boundary is within one hop of the sample
boundary. (Feature frame t is centred on sample ``160 t`` and its 400-sample window reaches
200 samples either side, so a token's energy smears about one frame into its neighbours.)

Vocabulary convention. Token ids are ``0 .. num_tokens - 1`` and the RNN-T blank is the
LAST index, ``blank = num_symbols - 1 = num_tokens``, as in torchaudio (``rnnt_loss``
default ``blank=-1``; ``emformer_rnnt_base(num_symbols=4097)`` with blank 4096).

Shapes: N samples, U target length, B batch, T frames, F mel bins, R right padding.
"""
import string
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from .features import HOP_LENGTH, SAMPLE_RATE, FeatureExtractor

VISIBLE_SPACE = "␣"  # how figures label the space token
LETTER_NAMES = string.ascii_lowercase + string.digits


# ----------------------------------------------------------------------------- vocabulary
@dataclass(frozen=True)
class Vocabulary:
    """Token names and ids. Ids ``0 .. num_tokens - 1`` are tokens; ``blank`` is the last id.

    ``num_symbols = num_tokens + 1`` is the V of the model (joiner output size).
    """

    tokens: Tuple[str, ...]
    blank_name: str = "<blank>"

    def __post_init__(self):
        object.__setattr__(self, "tokens", tuple(self.tokens))
        if len(self.tokens) < 1:
            raise ValueError("a vocabulary needs at least one token.")
        if len(set(self.tokens)) != len(self.tokens) or self.blank_name in self.tokens:
            raise ValueError(f"token names must be distinct and differ from the blank name, got {self.tokens}.")

    @classmethod
    def letters(cls, num_tokens: int = 20) -> "Vocabulary":
        """``a``, ``b``, ... (then digits): up to 36 tokens."""
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or not 1 <= num_tokens <= len(LETTER_NAMES):
            raise ValueError(f"num_tokens must be an integer in [1, {len(LETTER_NAMES)}], got {num_tokens!r}.")
        return cls(tuple(LETTER_NAMES[:num_tokens]))

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def num_symbols(self) -> int:
        """V: tokens plus blank."""
        return len(self.tokens) + 1

    @property
    def blank(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return self.num_symbols

    def name(self, index: int) -> str:
        return self.blank_name if index == self.blank else self.tokens[index]

    def label(self, index: int) -> str:
        """:meth:`name` as a figure or table shows it: the space token as a visible ``"␣"``."""
        name = self.name(index)
        return VISIBLE_SPACE if name == " " else name

    def encode(self, text: Union[str, Sequence[str]]) -> List[int]:
        """Token names -> ids. A string is split into characters (all default names are 1 char)."""
        lookup = {t: i for i, t in enumerate(self.tokens)}
        try:
            return [lookup[t] for t in text]
        except KeyError as err:
            raise ValueError(f"unknown token {err.args[0]!r}; vocabulary is {self.tokens}.") from None

    def decode(self, ids: Sequence[int], sep: str = "") -> str:
        """Ids -> names joined by ``sep``; blanks are dropped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return sep.join(self.tokens[i] for i in ids if i != self.blank)


# ----------------------------------------------------------------------------- utterances
@dataclass
class Alignment:
    """True token positions; all tensors int64 of shape ``(U,)``. See the module docstring."""

    start_sample: torch.Tensor
    end_sample: torch.Tensor

    @property
    def start_frame(self) -> torch.Tensor:
        return self.start_sample // HOP_LENGTH

    @property
    def end_frame(self) -> torch.Tensor:
        return self.end_sample // HOP_LENGTH

    def __len__(self) -> int:
        return self.start_sample.numel()

    def encoder_spans(self, stride: int) -> List[Tuple[int, int]]:
        """True token spans in encoder frames ``[(start, end), ...]``, end exclusive.

        Encoder frame k covers input frames ``[k * stride, (k + 1) * stride)``, so the token span
        ``[s, e)`` overlaps encoder frames ``s // stride .. ceil(e / stride) - 1``.
        """
        return [(int(s) // stride, -(-int(e) // stride))
                for s, e in zip(self.start_frame.tolist(), self.end_frame.tolist())]


@dataclass
class Utterance:
    """One utterance with its transcript and where each token was spoken.

    waveform ``(N,)`` float32 in [-1, 1] at 16 kHz; tokens ``(U,)`` int32 ids (no blank);
    alignment per token; text the token names; speaker the voice that spoke it (corpus-specific).
    """

    waveform: torch.Tensor
    tokens: torch.Tensor
    alignment: Alignment
    text: str
    speaker: Any
    sample_rate: int = SAMPLE_RATE


@dataclass
class SyntheticBatch:
    """A padded batch. Padding beyond each length is 0 (targets too, 0 is a real token id:
    always use the lengths).

    waveforms ``(B, N_max)`` float32, waveform_lengths ``(B,)`` int32;
    targets ``(B, U_max)`` int32, target_lengths ``(B,)`` int32 (as ``rnnt_loss`` wants);
    features ``(B, T_max + R, F)`` float32 and feature_lengths ``(B,)`` int32 (real frames,
    excluding the R right-context frames, as in torchaudio's training recipe), or ``None``
    when the collate has no feature extractor; utterances: the items, for alignments and text.
    """

    waveforms: torch.Tensor
    waveform_lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    features: Optional[torch.Tensor] = None
    feature_lengths: Optional[torch.Tensor] = None
    utterances: List[Utterance] = field(default_factory=list)

    def __len__(self) -> int:
        return self.waveforms.size(0)


class Collate:
    """``collate_fn`` for a DataLoader: list of :class:`Utterance` -> :class:`SyntheticBatch`.

    Args:
        feature_extractor: if given, features are computed with
            :meth:`FeatureExtractor.batch` (each utterance on its own, then padded).
    A class rather than a closure so DataLoader workers can pickle it.
    """

    def __init__(self, feature_extractor: Optional[FeatureExtractor] = None):
        self.feature_extractor = feature_extractor

    def __call__(self, items: Sequence[Utterance]) -> SyntheticBatch:
        if len(items) == 0:
            raise ValueError("cannot collate an empty list of utterances.")
        pad = torch.nn.utils.rnn.pad_sequence
        waves = [u.waveform for u in items]
        batch = SyntheticBatch(
            waveforms=pad(waves, batch_first=True),
            waveform_lengths=torch.tensor([w.numel() for w in waves], dtype=torch.int32),
            targets=pad([u.tokens.to(torch.int32) for u in items], batch_first=True),
            target_lengths=torch.tensor([u.tokens.numel() for u in items], dtype=torch.int32),
            utterances=list(items),
        )
        if self.feature_extractor is not None:
            with torch.no_grad():
                batch.features, batch.feature_lengths = self.feature_extractor.batch(waves)
        return batch


def collate(items: Sequence[Utterance], feature_extractor: Optional[FeatureExtractor] = None) -> SyntheticBatch:
    """Function form of :class:`Collate`."""
    return Collate(feature_extractor)(items)
