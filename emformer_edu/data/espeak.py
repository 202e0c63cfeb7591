"""A small ctypes binding to eSpeak NG: text in, int16 samples and timed events out.

eSpeak NG is a formant synthesizer (GPL-3). We never ship its files: the ``espeakng-loader``
wheel bundles ``libespeak-ng`` 1.52 with its voice data (Linux x86_64, macOS arm64, Windows);
without it we fall back to a system ``libespeak-ng`` found by ``ctypes.util.find_library``.
Importing this module never loads the library; :func:`synthesize` does.

We use the C API of ``speak_lib.h`` in synchronous mode: ``espeak_Initialize`` (with phoneme
events), ``espeak_SetSynthCallback``, ``espeak_SetVoiceByName``, ``espeak_SetParameter``,
``espeak_Synth`` and ``espeak_Synchronize``. eSpeak calls our callback with each chunk of
samples and a list of events; WORD and PHONEME events carry ``sample``, the exact sample
where the word or phoneme starts, and ``text_position``, where it is in the text.

Determinism. eSpeak keeps state in C ``static`` variables between utterances (the pitch
flutter phase, sample counters, smoothed amplitude), so the same text spoken twice in one
session gives slightly different samples, and ``espeak_Terminate`` does not reset them.
Loading the library afresh does: each :func:`synthesize` loads it, speaks, and unloads it
(about 3 ms). This only works if nothing else in the process holds the same library open.

Shapes: N samples at the library's rate (22050 Hz for eSpeak NG 1.52).
"""
import _ctypes  # dlclose / FreeLibrary: unloading is what resets eSpeak's hidden state
import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

try:  # optional: the wheel that bundles the library and its data
    import espeakng_loader
except ImportError:  # pragma: no cover - depends on the environment
    espeakng_loader = None

__all__ = ["EspeakNotFoundError", "Event", "Synthesis", "synthesize", "list_variants", "find_library",
           "EVENT_WORD", "EVENT_PHONEME"]

# ----------------------------------------------------------------------------- speak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: samples go to the callback, Synth returns when done
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data directory calls exit() in C
CHARS_UTF8 = 1
POS_CHARACTER = 1
EE_OK, EE_NOT_FOUND = 0, 2
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # counted from 1, in characters
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds (rounded): we use ``sample``
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),  # number for WORD, string (mnemonic, up to 8 bytes) for PHONEME
    ]


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CallbackType = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

INSTALL_HINT = (
    "eSpeak NG was not found. Install it with `pip install espeakng-loader` (a wheel with the library "
    "and its voices, for Linux x86_64, macOS arm64 and Windows), or install the system library "
    "(Debian/Ubuntu: `apt install libespeak-ng1`, Fedora: `dnf install espeak-ng`, macOS: `brew install espeak-ng`)."
)


class EspeakNotFoundError(RuntimeError):
    """Neither the ``espeakng-loader`` wheel nor a system ``libespeak-ng`` is available."""


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Event:
    """A WORD or PHONEME event. ``text_position`` counts from 0 (eSpeak counts from 1);
    ``sample`` is where it starts in :attr:`Synthesis.samples`; ``phoneme`` is the eSpeak
    mnemonic (``'E`` = stressed E, ``_:`` = pause) for PHONEME events, ``""`` for WORD events."""

    kind: int
    text_position: int
    sample: int
    phoneme: str = ""


@dataclass(frozen=True)
class Synthesis:
    """samples ``(N,)`` int16 at ``sample_rate``; events in the order eSpeak reported them."""

    samples: np.ndarray
    sample_rate: int
    events: Tuple[Event, ...]


# ----------------------------------------------------------------------------- the library
def find_library() -> Tuple[str, Optional[str]]:
    """``(library, data directory or None for the library's default)``; raises :class:`EspeakNotFoundError`."""
    if espeakng_loader is not None:
        path = espeakng_loader.get_library_path()
        if os.path.exists(path):
            return path, espeakng_loader.get_data_path()
    name = ctypes.util.find_library("espeak-ng")
    if name:
        return name, None
    raise EspeakNotFoundError(INSTALL_HINT)


class _Session:
    """The library loaded for one synthesis: ``with _Session() as s:`` gives ``s.lib`` and
    ``s.sample_rate``; the library is unloaded on exit."""

    def __enter__(self) -> "_Session":
        path, data = find_library()
        try:
            lib = ctypes.CDLL(path)
        except OSError as err:
            raise EspeakNotFoundError(f"{INSTALL_HINT} (Loading {path} failed: {err}.)") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode() if data else None, options)
        if rate <= 0:
            self._unload(lib)
            where = data or "its default directory (set ESPEAK_DATA_PATH to the folder holding espeak-ng-data)"
            raise EspeakNotFoundError(f"eSpeak NG ({path}) found no voice data in {where}. {INSTALL_HINT}")
        if hasattr(lib, "espeak_ng_SetRandSeed"):  # breathy variants (f2, f5, ...) draw rand(), seeded from the clock
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(0)
        lib.espeak_SetSynthCallback(_CALLBACK)
        self.lib, self.sample_rate = lib, rate
        return self

    def __exit__(self, *exc) -> None:
        self.lib.espeak_Terminate()
        self._unload(self.lib)

    @staticmethod
    def _unload(lib: ctypes.CDLL) -> None:
        close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary")
        close(lib._handle)


# One synthesis at a time: eSpeak's state is process-wide, and the callback writes into _chunks/_events.
_LOCK = threading.RLock()
_chunks: List[np.ndarray] = []
_events: List[Event] = []


def _on_synth(wav, num_samples: int, events) -> int:
    # Runs inside espeak_Synth. eSpeak reuses its buffers: copy everything now.
    if num_samples > 0:
        _chunks.append(np.frombuffer(ctypes.string_at(wav, 2 * num_samples), dtype=np.int16))
    i = 0
    while events[i].type != EVENT_LIST_TERMINATED:
        e = events[i]
        if e.type in (EVENT_WORD, EVENT_PHONEME):
            name = e.id.string.decode("utf-8", "replace") if e.type == EVENT_PHONEME else ""
            _events.append(Event(int(e.type), int(e.text_position) - 1, int(e.sample), name))
        i += 1
    return 0  # 0 = go on, 1 = abort


_CALLBACK = _CallbackType(_on_synth)  # module-level: C keeps the pointer, Python must keep the object


def _variants(lib: ctypes.CDLL) -> Tuple[str, ...]:
    spec = _Voice(languages=b"variant")  # espeak_ListVoices lists the variants when asked for this "language"
    found, array, i = [], lib.espeak_ListVoices(ctypes.byref(spec)), 0
    while array[i]:
        identifier = array[i].contents.identifier.decode("utf-8", "replace")  # "!v/f3"
        found.append(identifier.replace("\\", "/").rsplit("/", 1)[-1])
        i += 1
    return tuple(sorted(found))


_variant_cache: List[Tuple[str, ...]] = []


def list_variants() -> Tuple[str, ...]:
    """Names usable after ``+`` in a voice (``"en-us+f3"``): ``f1``-``f5``, ``m1``-``m8``, ``klatt``, ..."""
    with _LOCK:
        if not _variant_cache:
            with _Session() as session:
                _variant_cache.append(_variants(session.lib))
        return _variant_cache[0]


def synthesize(text: str, voice: str, rate: int, pitch: int, pitch_range: int, word_gap: int) -> Synthesis:
    """Speak ``text`` with eSpeak NG. Values are passed as they are (callers check ranges).

    ``voice`` is ``"language[+variant]"``: an unknown language or variant raises ``ValueError``
    (eSpeak itself silently ignores unknown variants). ``rate`` in words per minute,
    ``pitch`` and ``pitch_range`` in 0-100, ``word_gap`` in units of 10 ms at the default rate.
    """
    with _LOCK:
        language, _, variant = voice.partition("+")
        if variant and variant not in list_variants():
            raise ValueError(f"unknown eSpeak NG voice variant {variant!r} in voice {voice!r}; "
                             f"variants are {', '.join(list_variants())}.")
        if not language:
            raise ValueError(f"voice {voice!r} names no language; use e.g. 'en-us' or 'en-us+f3'.")
        with _Session() as session:
            lib = session.lib
            status = lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if status == EE_NOT_FOUND:
                raise ValueError(f"unknown eSpeak NG voice {voice!r}; use a language such as 'en-us', 'en', "
                                 f"'en-gb-scotland' or 'en-029', optionally with a variant: 'en-us+f3'.")
            if status != EE_OK:
                raise RuntimeError(f"espeak_SetVoiceByName({voice!r}) failed with status {status}.")
            for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range),
                                 (PARAM_WORDGAP, word_gap), (PARAM_VOLUME, 100)):
                lib.espeak_SetParameter(param, int(value), 0)
            _chunks.clear()
            _events.clear()
            data = text.encode("utf-8")
            status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            if status != EE_OK:
                raise RuntimeError(f"espeak_Synth failed with status {status}.")
            samples = np.concatenate(_chunks) if _chunks else np.zeros(0, dtype=np.int16)
            result = Synthesis(samples, session.sample_rate, tuple(_events))
            _chunks.clear()
            _events.clear()
            return result

