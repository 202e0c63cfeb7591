"""Recorded speech: audio files on disk and their transcripts, as training utterances.

The generated corpora (synthetic, spoken) make every utterance from its index and know where each
token was spoken. A real corpus is a list of files that people recorded and transcribed. Here each
file is a :class:`Recording` (its path, its transcript, the speaker, and where the transcript was
read, for error messages); :class:`RecordedSpeech` turns a list of them into a
``torch.utils.data.Dataset`` of :class:`RecordedUtterance` s, which the trainer batches like any
other utterance. :mod:`.librispeech` and :mod:`.manifest` make the lists.

The choices, and why:

* Audio is decoded with ``soundfile`` (libsndfile, whose wheel reads FLAC and WAV by itself).
  ``torchaudio.load`` needs TorchCodec and a system FFmpeg since torchaudio 2.9, which many
  machines lack; decoding a file is all we need from it.
* Real speech has no true token spans, so ``alignment`` is ``None``. Training reads only the
  waveform and the tokens (:class:`~emformer_edu.train.batches.FeatureCollate`), and the error
  rates compare texts; what needs the truth (emission delays) needs a generated corpus.
* Transcripts are normalized once (:func:`normalize_transcript`: lower case, single spaces), as
  LibriSpeech's are upper case and the character vocabulary is ``a``-``z``, ``'`` and space.
* Several channels are averaged into one (the usual downmix); another sample rate than 16 kHz is
  resampled (``resample=True``) or refused with the file's name (LibriSpeech, whose files are all
  16 kHz: another rate means other files).
* Tokens are made when an item is read (``vocab.encode``), not stored: 281,241 LibriSpeech
  transcripts would cost hundreds of MB as token lists in every DataLoader worker. The characters
  are checked once, up front, so a bad transcript stops the run before training, naming its line.

Notation: N samples, U target length, C channels.
"""
import os
from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torchaudio

from .corpus import Utterance, Vocabulary
from .features import SAMPLE_RATE

__all__ = ["TOKENIZERS", "RecordedCorpusConfig", "Recording", "RecordedUtterance", "RecordedSpeech",
           "normalize_transcript", "read_audio"]

TOKENIZERS = ("characters", "sentencepiece")  # how a recorded corpus's transcripts become tokens


@dataclass(frozen=True, kw_only=True)
class RecordedCorpusConfig:
    """What the settings of every recorded corpus share: the tokens its transcripts become.

    ``tokenizer``: ``"characters"`` (``a``-``z``, ``'`` and space, 28 tokens) or ``"sentencepiece"``:
    BPE pieces trained on the training transcripts (:mod:`.sentencepiece_vocab`), ``sentencepiece_vocab_size``
    of them with the four special ones; the model's V is one more (blank). Keyword-only, so a subclass's
    own fields (where the data is) come first.
    """

    tokenizer: str = field(default="characters", metadata={"help": "librispeech and manifest corpora: 'characters' "
                           "(a-z, ' and space) or 'sentencepiece' (BPE pieces trained on the training transcripts)"})
    sentencepiece_vocab_size: int = field(default=256, metadata={"help": "tokenizer sentencepiece: pieces, the 4 "
                                          "special ones included (the model's num_symbols is one more: blank)"})

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}.")
        size = self.sentencepiece_vocab_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 5:
            raise ValueError(f"sentencepiece_vocab_size must be an integer >= 5 (4 special pieces and one more), "
                             f"got {size!r}.")


class Recording(NamedTuple):
    """One audio file of a corpus: ``path`` (absolute), ``text`` (normalized transcript), ``speaker``
    (corpus-specific, ``None`` if unknown) and ``source``, where the transcript was read (``"file:line"``)."""

    path: str
    text: str
    speaker: Any
    source: str


@dataclass
class RecordedUtterance(Utterance):
    """An :class:`~emformer_edu.data.corpus.Utterance` read from a file: ``alignment`` is ``None`` (nobody
    marked where each token was spoken) and ``path`` names the audio file."""

    path: str = ""


def normalize_transcript(text: str) -> str:
    """Lower case, runs of white space as one space, none at the ends: ``" HELLO  WORLD "`` -> ``"hello world"``."""
    return " ".join(text.lower().split())


def read_audio(path: str, source: str = "") -> Tuple[torch.Tensor, int]:
    """``(waveform (N,) float32 in [-1, 1], sample_rate)`` of an audio file (FLAC, WAV, ... via soundfile).

    C > 1 channels are averaged into one. ``source`` says where the path came from (a manifest
    line), for the messages: ``FileNotFoundError`` for a missing file, ``ValueError`` for one that
    soundfile cannot decode.
    """
    import soundfile  # imported here: only recorded corpora need it

    where = f" ({source})" if source else ""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file {path!r}{where} not found.")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)  # (N, C)
    except (RuntimeError, OSError, TypeError) as err:  # soundfile.LibsndfileError is a RuntimeError
        raise ValueError(f"audio file {path!r}{where} cannot be decoded by soundfile (FLAC, WAV, OGG, ...): "
                         f"{err}") from None
    waveform = torch.from_numpy(samples)
    return (waveform[:, 0] if waveform.size(1) == 1 else waveform.mean(dim=1)).contiguous(), int(rate)


def _is_characters(vocab: Vocabulary) -> bool:
    """Whether ``vocab`` spells texts one character per token (SentencePiece pieces are words and parts)."""
    from .sentencepiece_vocab import SentencePieceVocabulary

    return not isinstance(vocab, SentencePieceVocabulary)


class RecordedSpeech(torch.utils.data.Dataset):
    """Recordings as utterances: item i is ``recordings[i]`` decoded, at 16 kHz, with its tokens.

    Args:
        recordings: what to read (:func:`.librispeech.read_librispeech`, :func:`.manifest.read_manifest`).
        vocab: turns each transcript into token ids; a character vocabulary must spell every
            transcript (checked here: ``ValueError`` naming the first line it cannot spell).
        resample: resample audio at another rate to 16 kHz; if ``False``, such a file raises ``ValueError``.
        name: what the messages call the corpus (e.g. ``"LibriSpeech"``).
    """

    def __init__(self, recordings: Sequence[Recording], vocab: Vocabulary, resample: bool = True,
                 name: str = "corpus"):
        self.recordings: List[Recording] = list(recordings)
        self.vocab, self.resample, self.name = vocab, resample, name
        if not self.recordings:
            raise ValueError(f"{name} holds no recordings.")
        if _is_characters(vocab):
            allowed = set(vocab.tokens)
            for r in self.recordings:
                if not r.text:
                    raise ValueError(f"{r.source}: the transcript is empty.")
                bad = sorted(set(r.text) - allowed)
                if bad:
                    raise ValueError(
                        f"{r.source}: the transcript {r.text!r} has characters {bad} that the vocabulary "
                        f"({''.join(vocab.tokens)!r}) cannot spell. Clean the transcript, or use SentencePiece "
                        f"(--tokenizer sentencepiece), whose pieces cover every character of the training texts.")

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def texts(self) -> List[str]:
        """The normalized transcripts, in item order (what a tokenizer trains on)."""
        return [r.text for r in self.recordings]

    def subset(self, indices: Sequence[int]) -> "RecordedSpeech":
        """The recordings at ``indices``, as a dataset of their own (e.g. a held-out sample)."""
        return RecordedSpeech([self.recordings[i] for i in indices], self.vocab, self.resample, self.name)

    def __getitem__(self, index: int) -> RecordedUtterance:
        r = self.recordings[index]
        waveform, rate = read_audio(r.path, r.source)
        if rate != SAMPLE_RATE:
            if not self.resample:
                raise ValueError(f"audio file {r.path!r} is {rate} Hz, but {self.name}'s files are {SAMPLE_RATE} Hz: "
                                 f"is it another corpus's file?")
            waveform = torchaudio.functional.resample(waveform, rate, SAMPLE_RATE)
        tokens = torch.tensor(self.vocab.encode(r.text), dtype=torch.int32)  # (U,)
        return RecordedUtterance(waveform, tokens, None, r.text, r.speaker, path=r.path)

    def __repr__(self) -> str:
        return f"RecordedSpeech({self.name}, {len(self)} recordings)"


def resolve(path: str, folder: Optional[str]) -> str:
    """``path`` as an absolute path; a relative one is taken relative to ``folder``."""
    path = os.path.expanduser(path)
    return os.path.abspath(path if os.path.isabs(path) or folder is None else os.path.join(folder, path))
