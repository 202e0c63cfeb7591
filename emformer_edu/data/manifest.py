"""Any transcribed audio as a corpus: a manifest, one ``path<TAB>text`` line per recording.

LibriSpeech has its own layout (:mod:`.librispeech`); every other corpus (Common Voice, your own
recordings, ...) can be listed in a tab-separated file::

    clips/0001.wav<TAB>hello world
    /data/other/0002.flac<TAB>it's a test

(``<TAB>``: one tab character), where each line holds

* a path relative to the manifest's folder, or absolute; any format soundfile reads (WAV, FLAC, OGG);
* the transcript, normalized as every transcript here (lower case, single spaces);
* audio at another rate than 16 kHz is resampled, several channels are averaged
  (:class:`~.recordings.RecordedSpeech`);
* blank lines are skipped, and a first line ``path<TAB>text`` is taken as a header.

Every line is checked when the manifest is read, so a typo stops the run before training starts,
naming the line: two fields (the text may not hold a tab), a non-empty text, an existing audio file.
"""
import os
from dataclasses import dataclass, field
from typing import List, Optional

from .recordings import RecordedCorpusConfig, Recording, normalize_transcript, resolve

__all__ = ["ManifestConfig", "read_manifest"]


def _field(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ManifestConfig(RecordedCorpusConfig):
    """The manifests of the training and the held-out recordings (paths of TSV files), and the tokens
    (``tokenizer``, ``sentencepiece_vocab_size``: :class:`~.recordings.RecordedCorpusConfig`)."""

    train_manifest: Optional[str] = _field(None, "manifest corpus: TSV file of the training recordings, "
                                                 "one 'path<TAB>text' line each (paths relative to the file's folder)")
    valid_manifest: Optional[str] = _field(None, "manifest corpus: TSV file of the held-out recordings")


def read_manifest(path: str) -> List[Recording]:
    """The recordings a manifest lists (speaker ``None``; ``source`` = ``"manifest:line"``).

    Raises ``FileNotFoundError`` for a missing manifest or audio file and ``ValueError`` for a malformed
    line or a manifest without recordings, naming the file and line.
    """
    if not path:
        raise ValueError("the manifest corpus needs --train-manifest and --valid-manifest: TSV files of "
                         "'path<TAB>text' lines.")
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manifest {path!r} not found.")
    folder = os.path.dirname(path)
    recordings: List[Recording] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if number == 1 and [x.strip().lower() for x in fields] == ["path", "text"]:
                continue  # the header
            source = f"{path}:{number}"
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise ValueError(f"{source}: expected 'path<TAB>text' (two fields, one tab, a non-empty text), got "
                                 f"{line!r}.")
            audio = resolve(fields[0].strip(), folder)
            if not os.path.isfile(audio):
                raise FileNotFoundError(f"{source}: audio file {audio!r} not found (a relative path is taken "
                                        f"relative to the manifest's folder).")
            recordings.append(Recording(audio, normalize_transcript(fields[1]), None, source))
    if not recordings:
        raise ValueError(f"manifest {path!r} lists no recordings: it needs 'path<TAB>text' lines.")
    return recordings
