"""Subword tokens: a SentencePiece model as a :class:`~emformer_edu.data.corpus.Vocabulary`.

Characters make long targets (U ~ 5 per word), so the joiner's ``(B, T', U + 1, V)`` grid is large
and the predictor must spell. torchaudio's LibriSpeech Emformer RNN-T instead predicts 4,096 BPE
pieces from SentencePiece (Kudo & Richardson 2018, arXiv:1808.06226): frequent words are one
token, rare ones a few. Its pieces are ids ``0 .. V - 2`` and blank is the last id (4,096), the
same layout as every vocabulary here, so the model, the loss and the decoders need no change.

::

    vocab = SentencePieceVocabulary.train(texts, vocab_size=256)   # the package trains its own
    vocab = SentencePieceVocabulary.from_file("spm_bpe_4096_librispeech.model")  # torchaudio's
    ids = vocab.encode("hello world"); vocab.decode(ids)          # 'hello world'

Training follows torchaudio's recipe (``examples/asr/emformer_rnnt/librispeech/train_spm.py``):
BPE, ``character_coverage=1.0``, special ids ``bos 0, pad 1, eos 2, unk 3``. Decoding follows its
``_SentencePieceTokenProcessor``: unk, eos and pad are dropped, pieces are joined and ``"▁"`` becomes
a space, leading spaces stripped. The model is held as its serialized bytes, so a vocabulary
pickles into DataLoader workers and is saved beside a checkpoint.

Notation: U target length, V number of symbols (pieces + blank).
"""
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Iterable, List, Sequence, Union

import torch

from .corpus import Vocabulary

__all__ = ["SentencePieceVocabulary", "WORD_BOUNDARY"]

WORD_BOUNDARY = "\u2581"  # "▁": SentencePiece's mark of a piece that starts a word
SPECIAL_IDS = dict(bos_id=0, pad_id=1, eos_id=2, unk_id=3)  # torchaudio's LibriSpeech recipe


def _sentencepiece():
    """The ``sentencepiece`` module, imported on first use (only subword vocabularies need it); its SWIG
    bindings warn about their own types at import (``SwigPyPacked has no __module__``), not about our code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import sentencepiece
    return sentencepiece


def _processor(model_proto: bytes):
    return _sentencepiece().SentencePieceProcessor(model_proto=model_proto)


@dataclass(frozen=True, eq=False)
class SentencePieceVocabulary(Vocabulary):
    """A SentencePiece model's pieces (in id order) as tokens, blank last. Build it with
    :meth:`train` or :meth:`from_file`; ``tokens`` are filled from ``model_proto``."""

    tokens: tuple = ()
    blank_name: str = "<blank>"
    model_proto: bytes = field(default=b"", repr=False)

    def __post_init__(self):
        if not self.model_proto:
            raise ValueError("a SentencePieceVocabulary needs model_proto, the bytes of a SentencePiece model; "
                             "use SentencePieceVocabulary.train(...) or .from_file(path).")
        try:
            sp = _processor(self.model_proto)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"model_proto is not a SentencePiece model: {err}") from None
        object.__setattr__(self, "tokens", tuple(sp.id_to_piece(i) for i in range(sp.get_piece_size())))
        super().__post_init__()

    # -- making one -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "SentencePieceVocabulary":
        """The vocabulary of a ``.model`` file (e.g. torchaudio's ``spm_bpe_4096_librispeech.model``)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SentencePiece model {os.fspath(path)!r} not found.")
        with open(path, "rb") as f:
            proto = f.read()
        try:
            return cls(model_proto=proto)
        except ValueError as err:
            raise ValueError(f"{os.fspath(path)!r}: {err}") from None

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_type: str = "bpe",
              required_chars: str = "") -> "SentencePieceVocabulary":
        """Train a SentencePiece model on ``texts`` (torchaudio's recipe settings) in memory.
        ``vocab_size`` counts pieces including the four special ones; V = vocab_size + 1.
        ``required_chars`` become pieces even if ``texts`` lack them (else they would be ``<unk>``)."""
        spm = _sentencepiece()
        texts = [t.strip() for t in texts if t and t.strip()]
        if not texts:
            raise ValueError("train needs at least one non-empty text.")
        if required_chars:  # one more line that holds each once (SentencePiece aborts on a required char it never saw)
            texts.append(" ".join(required_chars))
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < len(SPECIAL_IDS) + 1:
            raise ValueError(f"vocab_size must be an integer >= {len(SPECIAL_IDS) + 1}, got {vocab_size!r}.")
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type=model_type,
                character_coverage=1.0, num_threads=1, minloglevel=2,
                **SPECIAL_IDS)
        except RuntimeError as err:  # e.g. "Vocabulary size is too high (300). Please set it to a value <= 120."
            raise ValueError(f"SentencePiece training failed on {len(texts)} texts: {err}") from None
        return cls(model_proto=model.getvalue())

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the ``.model`` file (loadable by ``sentencepiece`` and by torchaudio's pipeline)."""
        with open(path, "wb") as f:
            f.write(self.model_proto)

    # -- using one --------------------------------------------------------------------
    @property
    def processor(self):
        """The ``sentencepiece.SentencePieceProcessor`` (made on first use, not pickled)."""
        sp = self.__dict__.get("_sp")
        if sp is None:
            sp = _processor(self.model_proto)
            object.__setattr__(self, "_sp", sp)
        return sp

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_sp", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def encode(self, text: Union[str, Sequence[str]]) -> List[int]:
        """Text -> piece ids (no blank). A list of piece names is looked up one by one."""
        if not isinstance(text, str):
            return super().encode(text)
        return list(self.processor.encode(text, out_type=int))

    def decode(self, ids: Sequence[int], sep: str = "") -> str:
        """Piece ids -> text, as torchaudio's token processor does (blank, unk, eos, pad dropped;
        ``"▁"`` -> space; leading spaces stripped). ``sep`` joins the raw pieces instead, when given."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        sp = self.processor
        drop = {self.blank, sp.unk_id(), sp.eos_id(), sp.pad_id()}
        pieces = [self.tokens[i] for i in ids if i not in drop]
        if sep:
            return sep.join(pieces)
        return "".join(pieces).replace(WORD_BOUNDARY, " ").lstrip()
