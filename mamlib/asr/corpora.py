"""Test sets for the ASR experiments: synthetic stand-ins that run anywhere, and the paper's real corpora.

Every loader returns a list of :class:`~mamlib.asr.recognizers.Utterance` (16 kHz mono float32, text, speaker), in a
fixed order, and takes a ``split`` of ``"dev"``, ``"test"``, ``"train"`` (fine-tuning, Table 5) or ``"all"``. The book
goes through :func:`load_corpus`.

Synthetic (made offline from ``data/sentences.txt``, cached under ``cache_dir``; see :mod:`mamlib.asr.synth`):

* ``smoke``: a handful of the shortest sentences read by two espeak-ng voices; seconds to build.
* ``lj-like``: one voice (hibari's bundled "heart"), standing in for LJ Speech (one female reader).
* ``vctk-like``: several espeak-ng accents (US, British, Scottish, Caribbean, RP, New York, Lancaster, West
  Midlands, some with female variants), standing in for VCTK's many accented speakers.
* ``alsa-real``: the 8 short real recordings of a human voice that Debian's alsa-utils installs.

Sentence split: line ``k`` (1-based) of ``data/sentences.txt`` is in **dev** when ``k`` is odd and in **test** when
it is even (``"all"`` is both). The file is written in topic blocks, so interleaving keeps both halves alike. The
sentence id is ``s`` plus the four-digit line number. The **train** split reads ``data/train_sentences.txt``, other
sentences (ids ``t`` plus the line number) that share no sentence with dev or test (a test checks this on the
normalized text).

Real (for the GPU preset): ``ljspeech`` (LJ Speech 1.1) and ``vctk`` (VCTK 0.92 or 0.80). Their split is by a stable
hash: ``sha256("split:" + key)`` read as a number in [0, 1) below 0.1 is dev, below 0.2 test, the rest train
(independent of file order and of the machine). The key is the utterance id for LJ Speech (every clip has its own
text) and the normalized sentence for VCTK, whose speakers read many of the same sentences: a sentence never
crosses splits. The ``n`` cap keeps the ``n`` utterances of the split with the smallest ``sha256("subset:" + id)``
(so the first 100 are inside the first 200), returned in id order. Audio is read only for the utterances kept.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamlib.asr.metrics import normalize_transcript
from mamlib.asr.recognizers import Utterance
from mamlib.asr.synth import synthesize_espeak, synthesize_hibari
from mamlib.common.audio import load_audio
from mamlib.common.paths import unpacked_root

SENTENCES_FILE = Path(__file__).resolve().parents[2] / "data" / "sentences.txt"
TRAIN_SENTENCES_FILE = SENTENCES_FILE.with_name("train_sentences.txt")
SPLITS = ("dev", "test", "train", "all")
#: Upper bounds of the dev and test shares of a real corpus (by hash); the rest is train.
DEV_SHARE, TEST_SHARE = 0.1, 0.2
SMOKE_VOICES = ("en-us", "en-gb")
LJ_LIKE_SPEAKER = "hibari-heart"
VCTK_LIKE_VOICES = (
    "en-us",
    "en-gb+f3",
    "en-gb-scotland",
    "en-029+f2",
    "en-gb-x-rp",
    "en-us-nyc+f4",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd+f1",
)
ALSA_DIR = Path("/usr/share/sounds/alsa")
ALSA_SPEECH = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
LJSPEECH_URL = "https://keithito.com/LJ-Speech-Dataset/"
VCTK_URL = "https://datashare.ed.ac.uk/handle/10283/3443"
#: Folders the VCTK releases unpack to (0.92, 0.80).
VCTK_FOLDERS = ("VCTK-Corpus-0.92", "VCTK-Corpus")


@dataclass(frozen=True)
class Sentence:
    """One line of ``data/sentences.txt``: its id (``s0001`` for line 1) and text."""

    id: str
    text: str


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def _check_n(n: int | None) -> int | None:
    if n is not None and n < 0:
        raise ValueError(f"n must be None or non-negative, got {n}")
    return n


def sentences(split: str = "all", path: str | Path | None = None) -> list[Sentence]:
    """The sentences of ``split`` in file order: odd lines of ``data/sentences.txt`` dev, even lines test, ``all``
    both; ``train`` every line of ``data/train_sentences.txt``. Blank lines are skipped."""
    _check_split(split)
    train = split == "train"
    path = Path(path) if path is not None else TRAIN_SENTENCES_FILE if train else SENTENCES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"sentence list not found: {path} (it ships in the repository's data/ folder)")
    out: list[Sentence] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        part = "train" if train else "dev" if lineno % 2 == 1 else "test"
        if split in ("all", part):
            out.append(Sentence(f"{'t' if train else 's'}{lineno:04d}", text))
    return out


def _utterance_from_file(uid: str, wav: Path, text: str, speaker: str) -> Utterance:
    return Utterance(id=uid, audio=load_audio(wav), text=text, speaker=speaker)


@dataclass(frozen=True)
class UtteranceFile:
    """An utterance not read yet: its id, audio file, transcript and speaker."""

    id: str
    path: Path
    text: str
    speaker: str

    def load(self) -> Utterance:
        return _utterance_from_file(self.id, self.path, self.text, self.speaker)


class OnDisk(Sequence[Utterance]):
    """Utterances whose audio is read from disk at each access, never kept: a real corpus's training split, ~80 %
    of it (VCTK's would hold ~12 GB in float32), streamed through fine-tuning a micro-batch at a time."""

    def __init__(self, files: Sequence[UtteranceFile]) -> None:
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return OnDisk(self.files[index])
        return self.files[index].load()


def _read(files: Sequence[UtteranceFile], stream: bool) -> list[Utterance] | OnDisk:
    return OnDisk(files) if stream else [f.load() for f in files]


# -- synthetic ---------------------------------------------------------------------------------------------------


def smoke_corpus(cache_dir: str | Path, *, n_dev: int = 4, n_test: int = 4, n_train: int = 0
                 ) -> dict[str, list[Utterance]]:
    """A tiny two-voice espeak-ng set: ``{"dev": [...], "test": [...], "train": [...]}``.

    Each split takes its ``n`` shortest sentences (fewest words, ties by id), read alternately by ``en-us`` and
    ``en-gb``. Cold it takes well under a second per sentence; cached, milliseconds.
    """
    out: dict[str, list[Utterance]] = {}
    for split, n in (("dev", n_dev), ("test", n_test), ("train", n_train)):
        pool = sorted(sentences(split), key=lambda s: (len(s.text.split()), s.id))[: _check_n(n)]
        pool.sort(key=lambda s: s.id)
        utts = []
        for i, sent in enumerate(pool):
            voice = SMOKE_VOICES[i % len(SMOKE_VOICES)]
            wav = synthesize_espeak(sent.text, voice, cache_dir)
            utts.append(_utterance_from_file(f"smoke-{voice}-{sent.id}", wav, sent.text, voice))
        out[split] = utts
    return out


def lj_like_corpus(cache_dir: str | Path, split: str, n: int | None = None, *, seed: int = 0) -> list[Utterance]:
    """The split's sentences (the first ``n`` when given) read by hibari's bundled voice, one speaker."""
    sents = sentences(split)[: _check_n(n)]
    return [
        _utterance_from_file(
            f"lj-like-{s.id}", synthesize_hibari(s.text, cache_dir, seed=seed), s.text, LJ_LIKE_SPEAKER
        )
        for s in sents
    ]


def vctk_like_corpus(
    cache_dir: str | Path, split: str, n: int | None = None, *, voices: Sequence[str] = VCTK_LIKE_VOICES
) -> list[Utterance]:
    """The split's sentences (the first ``n`` when given) read by several espeak-ng accents.

    Sentence ``k`` of the split goes to ``voices[k % len(voices)]`` (round robin, so any prefix is balanced
    across speakers); the voice name is the speaker id.
    """
    if not voices:
        raise ValueError("vctk_like_corpus needs at least one voice")
    sents = sentences(split)[: _check_n(n)]
    utts = []
    for k, s in enumerate(sents):
        voice = voices[k % len(voices)]
        wav = synthesize_espeak(s.text, voice, cache_dir)
        utts.append(_utterance_from_file(f"vctk-like-{voice}-{s.id}", wav, s.text, voice))
    return utts


def alsa_transcript(path: str | Path) -> str:
    """The words an alsa-utils test clip says, from its name: ``Front_Center.wav`` -> ``front center``."""
    return " ".join(Path(path).stem.lower().replace("_", " ").split())


def alsa_real_clips(directory: str | Path = ALSA_DIR) -> list[Utterance]:
    """The 8 real human recordings shipped by Debian's alsa-utils ("Front Center", "Rear Left", ...).

    ``Noise.wav`` (no speech) is left out. Too few to split: every split gets the same 8 clips, so use them as a
    real-voice sanity check, never to choose settings.
    """
    directory = Path(directory)
    missing = [name for name in ALSA_SPEECH if not (directory / f"{name}.wav").is_file()]
    if missing:
        raise FileNotFoundError(
            f"the alsa-utils speech clips are missing from {directory} ({', '.join(missing)}.wav): install them with "
            "`sudo apt-get install alsa-utils` (or `make setup`)"
        )
    return [
        _utterance_from_file(f"alsa-{name}", directory / f"{name}.wav", alsa_transcript(name), "alsa")
        for name in ALSA_SPEECH
    ]


# -- real corpora ------------------------------------------------------------------------------------------------


def _unit_hash(tag: str, uid: str) -> float:
    digest = hashlib.sha256(f"{tag}:{uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str) -> str:
    """``"dev"``, ``"test"`` or ``"train"`` for a real-corpus split key (stable hash; about 10/10/80 %)."""
    u = _unit_hash("split", key)
    return "dev" if u < DEV_SHARE else "test" if u < TEST_SHARE else "train"


def select_ids(ids: Sequence[str], split: str, n: int | None = None, keys: Mapping[str, str] | None = None
               ) -> list[str]:
    """The ids in ``split`` (all for ``"all"``), capped to the ``n`` with the smallest subset hash, in id order.
    ``keys`` maps an id to the key its split is drawn from (default: the id itself)."""
    _check_split(split)
    _check_n(n)
    chosen = [i for i in ids if split == "all" or split_of(i if keys is None else keys[i]) == split]
    if n is not None:
        chosen = sorted(chosen, key=lambda i: (_unit_hash("subset", i), i))[:n]
    return sorted(chosen)


def _find_ljspeech(root: Path) -> Path:
    found = unpacked_root(root, ("LJSpeech-1.1",), lambda c: (c / "metadata.csv").is_file() and (c / "wavs").is_dir())
    if found is not None:
        return found
    raise FileNotFoundError(
        f"LJ Speech not found at {root}. Download LJSpeech-1.1 from {LJSPEECH_URL} and unpack it so that "
        f"{root}/metadata.csv (lines 'ID|raw text|normalized text') and {root}/wavs/ID.wav exist "
        "(the unpacked LJSpeech-1.1 folder itself, or its parent, may be given)."
    )


def ljspeech_corpus(root: str | Path, split: str, n: int | None = None, *, stream: bool = False
                    ) -> list[Utterance] | OnDisk:
    """LJ Speech 1.1: ``metadata.csv`` (``id|raw|normalized``) and ``wavs/ID.wav``; reference = normalized text.
    ``stream=True`` returns the utterances :class:`OnDisk` (audio read at each access)."""
    base = _find_ljspeech(Path(root))
    texts: dict[str, str] = {}
    with open(base / "metadata.csv", encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) < 3 or not row[2].strip():
                raise ValueError(
                    f"{base / 'metadata.csv'} line {lineno}: expected 'ID|raw text|normalized text' (LJ Speech 1.1's "
                    f"three columns; the normalized one, numbers spelled out, is the reference), got {row!r}")
            texts[row[0].strip()] = row[2].strip()
    return _read([UtteranceFile(uid, base / "wavs" / f"{uid}.wav", texts[uid], "LJ")
                  for uid in select_ids(list(texts), split, n)], stream)


_VCTK_LAYOUTS: tuple[tuple[str, Callable[[str, str, str], str]], ...] = (
    ("wav48_silence_trimmed", lambda spk, uid, mic: f"{spk}/{uid}_{mic}.flac"),  # VCTK 0.92
    ("wav48", lambda spk, uid, mic: f"{spk}/{uid}.wav"),  # VCTK 0.80
)


def _vctk_layout_error(root: Path, why: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"VCTK not found at {root}: {why}. Download VCTK (0.92) from {VCTK_URL} and unpack it so that "
        f"{root}/txt/pXXX/pXXX_NNN.txt and {root}/wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac exist "
        "(the older 0.80 layout, wav48/pXXX/pXXX_NNN.wav, also works; so does the folder holding "
        "VCTK-Corpus-0.92/)."
    )


def vctk_corpus(root: str | Path, split: str, n: int | None = None, *, mic: str = "mic1", stream: bool = False
                ) -> list[Utterance] | OnDisk:
    """VCTK 0.92 (``wav48_silence_trimmed``, FLAC, ``mic``) or 0.80 (``wav48``, WAV); speaker = ``pXXX``.
    ``stream=True`` returns the utterances :class:`OnDisk` (audio read at each access).

    Transcripts without a recording (a few exist in the release) are skipped with a warning.
    """
    root = unpacked_root(root, VCTK_FOLDERS, lambda c: (c / "txt").is_dir()) or Path(root)
    if not (root / "txt").is_dir():
        raise _vctk_layout_error(root, "no txt/ folder")
    layout = next(((d, fn) for d, fn in _VCTK_LAYOUTS if (root / d).is_dir()), None)
    if layout is None:
        raise _vctk_layout_error(root, "neither wav48_silence_trimmed/ nor wav48/ is there")
    audio_dir, name_of = root / layout[0], layout[1]
    items: dict[str, tuple[str, Path, str]] = {}
    skipped: list[str] = []
    for speaker in sorted(d for d in (root / "txt").iterdir() if d.is_dir()):
        found = [(txt, audio_dir / name_of(speaker.name, txt.stem, mic)) for txt in sorted(speaker.glob("*.txt"))]
        if found and not any(wav.is_file() for _, wav in found):
            raise _vctk_layout_error(root, f"speaker {speaker.name} has {len(found)} transcripts but none of its "
                                           f"recordings, e.g. {found[0][1]} (mic {mic!r})")
        for txt, wav in found:
            if not wav.is_file():
                skipped.append(txt.stem)
                continue
            items[txt.stem] = (speaker.name, wav, txt.read_text(encoding="utf-8", errors="replace").strip())
    if not items:
        raise _vctk_layout_error(root, f"no transcript in txt/ has a matching recording under {audio_dir}")
    if skipped:
        warnings.warn(
            f"VCTK: {len(skipped)} transcripts have no {layout[0]} recording and are skipped "
            f"(e.g. {', '.join(skipped[:3])})",
            stacklevel=2,
        )
    keys = {uid: normalize_transcript(text) for uid, (_, _, text) in items.items()}
    return _read([UtteranceFile(uid, items[uid][1], items[uid][2], items[uid][0])
                  for uid in select_ids(list(items), split, n, keys)], stream)


# -- dispatcher --------------------------------------------------------------------------------------------------

#: Every ASR dataset and the option keys it accepts (besides the split sizes and ``path``).
CORPUS_OPTIONS: dict[str, frozenset[str]] = {
    "smoke": frozenset({"n_dev", "n_test", "n_train"}),
    "lj-like": frozenset({"seed"}),
    "vctk-like": frozenset({"voices"}),
    "alsa-real": frozenset({"directory"}),
    "ljspeech": frozenset(),
    "vctk": frozenset({"mic"}),
}
ASR_DATASETS = tuple(CORPUS_OPTIONS)


def load_corpus(
    dataset: str,
    split: str,
    *,
    cache_dir: str | Path | None = None,
    path: str | Path | None = None,
    n: int | None = None,
    stream: bool = False,
    **options: Any,
) -> list[Utterance] | OnDisk:
    """The utterances of ASR dataset ``dataset`` (one of :data:`ASR_DATASETS`) for ``split`` (dev, test or all).

    ``cache_dir`` holds synthesized audio (smoke, lj-like, vctk-like); ``path`` is the dataset folder (ljspeech,
    vctk); ``n`` caps the number of utterances; ``stream=True`` leaves a real corpus's audio on disk until each
    utterance is used (:class:`OnDisk`; the synthetic ones are small and always read); ``options`` go to the
    loader (``seed`` for lj-like, ``voices`` for vctk-like, ``mic`` for vctk, ``directory`` for alsa-real).
    """
    if dataset not in ASR_DATASETS:
        raise ValueError(f"unknown ASR dataset {dataset!r}; known: {', '.join(ASR_DATASETS)}")
    _check_split(split)
    _check_n(n)
    if dataset in ("smoke", "lj-like", "vctk-like") and cache_dir is None:
        raise ValueError(f"corpus {dataset!r} is synthesized and needs cache_dir= (a folder for the audio cache)")
    if dataset in ("ljspeech", "vctk") and path is None:
        url = LJSPEECH_URL if dataset == "ljspeech" else VCTK_URL
        raise ValueError(f"corpus {dataset!r} needs path= (the folder of the downloaded dataset; get it from {url})")
    if dataset == "smoke":
        assert cache_dir is not None
        sizes = {k: options.pop(k) for k in ("n_dev", "n_test", "n_train") if k in options}
        if n is not None:
            sizes = {"n_dev": n, "n_test": n, "n_train": n if split == "train" else 0}
        _no_options(dataset, options)
        parts = smoke_corpus(cache_dir, **sizes)
        return parts["dev"] + parts["test"] if split == "all" else parts[split]
    if dataset == "lj-like":
        assert cache_dir is not None
        return lj_like_corpus(cache_dir, split, n, **options)
    if dataset == "vctk-like":
        assert cache_dir is not None
        return vctk_like_corpus(cache_dir, split, n, **options)
    if dataset == "alsa-real":
        if split == "train":
            raise ValueError("corpus 'alsa-real' (8 clips) has no train split; fine-tune on another corpus")
        return alsa_real_clips(**options)[:n]
    assert path is not None
    if dataset == "ljspeech":
        _no_options(dataset, options)
        return ljspeech_corpus(path, split, n, stream=stream)
    return vctk_corpus(path, split, n, stream=stream, **options)


def _no_options(dataset: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"corpus {dataset!r} takes no options {sorted(options)}")
