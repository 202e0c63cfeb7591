"""LibriSpeech (Panayotov et al. 2015) from the learner's disk: 1,000 hours of read audiobooks.

torchaudio's Emformer RNN-T was trained on it. The corpus is a tree of FLAC files, one transcript
file per book chapter::

    ROOT/LibriSpeech/train-clean-100/19/198/19-198-0001.flac
    ROOT/LibriSpeech/train-clean-100/19/198/19-198.trans.txt    "19-198-0001 NORTHANGER ABBEY ..."

``torchaudio.datasets.LIBRISPEECH(ROOT, url=subset, download=False)`` walks it: it lists the FLAC
files and its ``get_metadata(n)`` gives file n's path, sample rate, transcript and speaker, chapter
and utterance numbers. :func:`read_librispeech` uses exactly that walk, but decodes nothing: the
audio is read later, one item at a time, by :class:`~.recordings.RecordedSpeech` with soundfile
(``torchaudio.load`` would need FFmpeg). Nothing is ever downloaded: ``download=False``, and a
missing folder is an error that says what to extract where.

Before the walk, every transcript file is checked, because torchaudio's reader stops at the first
bad line with an unpacking error: each line must be ``ID TEXT``, and ID's FLAC file must exist.

Subsets: ``train-clean-100``, ``train-clean-360``, ``train-other-500`` (960 h together),
``dev-clean``, ``dev-other``, ``test-clean``, ``test-other``. Several are joined with commas.
"""
import glob
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .recordings import RecordedCorpusConfig, Recording, normalize_transcript

__all__ = ["FOLDER", "SUBSETS", "LibriSpeechConfig", "read_librispeech"]

FOLDER = "LibriSpeech"  # what the openslr.org archives extract to, torchaudio's folder_in_archive
SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360",
           "train-other-500")
URL = "https://www.openslr.org/12"


def _field(default, help: str):
    return field(default=default, metadata={"help": help})


def split_subsets(subsets: str) -> Tuple[str, ...]:
    """``"train-clean-100, train-clean-360"`` -> ``("train-clean-100", "train-clean-360")``."""
    return tuple(s.strip() for s in subsets.split(",") if s.strip())


@dataclass(frozen=True)
class LibriSpeechConfig(RecordedCorpusConfig):
    """Where LibriSpeech is, which subsets train and validate (comma-separated names), and the tokens
    (``tokenizer``, ``sentencepiece_vocab_size``: :class:`~.recordings.RecordedCorpusConfig`)."""

    root: Optional[str] = _field(None, "librispeech corpus: the folder that holds LibriSpeech/<subset>/ "
                                       "(torchaudio's root; nothing is downloaded)")
    train_subsets: str = _field("train-clean-100", "librispeech corpus: training subsets, comma-separated "
                                                   "(e.g. train-clean-100,train-clean-360)")
    valid_subsets: str = _field("dev-clean", "librispeech corpus: held-out subsets, comma-separated")

    def __post_init__(self):
        super().__post_init__()
        for name in ("train_subsets", "valid_subsets"):
            names = split_subsets(getattr(self, name))
            unknown = [s for s in names if s not in SUBSETS]
            if not names or unknown:
                raise ValueError(f"{name} must be comma-separated LibriSpeech subsets out of {SUBSETS}, "
                                 f"got {getattr(self, name)!r}.")
        both = set(self.train) & set(self.valid)
        if both:
            raise ValueError(f"{sorted(both)} is among both the training and the held-out subsets: the held-out "
                             f"error rates would measure memory, not recognition.")

    @property
    def train(self) -> Tuple[str, ...]:
        return split_subsets(self.train_subsets)

    @property
    def valid(self) -> Tuple[str, ...]:
        return split_subsets(self.valid_subsets)


def _check_transcripts(folder: str) -> Dict[str, str]:
    """Every ``*.trans.txt`` under a subset folder, checked: utterance id -> ``"file:line"``."""
    where: Dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*", "*", "*.trans.txt"))):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                parts = line.strip().split(" ", 1)
                if len(parts) != 2 or not parts[1].strip():
                    raise ValueError(f"{path}:{number}: expected 'SPEAKER-CHAPTER-UTTERANCE TRANSCRIPT', got "
                                     f"{line.rstrip()!r}. Fix or delete that line.")
                audio = os.path.join(os.path.dirname(path), parts[0] + ".flac")
                if not os.path.isfile(audio):
                    raise FileNotFoundError(f"{path}:{number}: the audio file {audio!r} of utterance {parts[0]} is "
                                            f"missing. Was the archive extracted completely?")
                where[parts[0]] = f"{path}:{number}"
    return where


def _subset_folder(root: str, subset: str) -> str:
    folder = os.path.join(root, FOLDER, subset)
    if not os.path.isdir(folder):
        parent = os.path.join(root, FOLDER)
        found = sorted(d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))) \
            if os.path.isdir(parent) else []
        raise FileNotFoundError(
            f"LibriSpeech subset {subset!r} not found: there is no folder {folder!r} (subsets there: "
            f"{', '.join(found) or 'none'}). Download {subset}.tar.gz from {URL} and extract it in {root!r}, "
            f"which makes {FOLDER}/{subset}/; this package never downloads.")
    return folder


def read_librispeech(root: str, subsets: Sequence[str]) -> List[Recording]:
    """The recordings of LibriSpeech ``subsets`` under ``root`` (subset by subset, in torchaudio's order:
    sorted file ids), transcripts lower-cased, speaker = LibriSpeech's speaker number.

    Raises ``FileNotFoundError`` for a missing root, subset folder or audio file named by a transcript,
    and ``ValueError`` for a malformed transcript line (file and line number given) or a subset
    without FLAC files.
    """
    from torchaudio.datasets import LIBRISPEECH

    if not root:
        raise ValueError("the LibriSpeech corpus needs its root: the folder that holds LibriSpeech/<subset>/ "
                         "(--root DIR on the command line).")
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"LibriSpeech root {root!r} not found: give the folder that holds "
                                f"{FOLDER}/<subset>/ (the archives from {URL} extract to {FOLDER}/).")
    recordings: List[Recording] = []
    for subset in subsets:
        folder = _subset_folder(root, subset)
        where = _check_transcripts(folder)
        data = LIBRISPEECH(root, url=subset, download=False)
        if len(data) == 0:
            raise ValueError(f"LibriSpeech subset folder {folder!r} holds no SPEAKER/CHAPTER/*.flac files.")
        for n in range(len(data)):
            try:
                path, _, transcript, speaker, _, _ = data.get_metadata(n)
            except (FileNotFoundError, ValueError):  # no transcript line, no transcript file, a stray file name
                name = data._walker[n] if hasattr(data, "_walker") else f"number {n}"
                raise ValueError(f"LibriSpeech {subset}: the audio file {name}.flac has no transcript: it must be "
                                 f"SPEAKER-CHAPTER-UTTERANCE.flac with a line in SPEAKER-CHAPTER.trans.txt beside "
                                 f"it.") from None
            file_id = os.path.basename(path)[: -len(".flac")]
            recordings.append(Recording(os.path.join(root, FOLDER, path), normalize_transcript(transcript),
                                        speaker, where[file_id]))
    return recordings
