"""Test sets for the ASR experiments: synthetic stand-ins that run anywhere, and the paper's real corpora, read
through :func:`load_corpus`. Every loader of :data:`ASR_DATASETS` is ``load(folder, split, n, **options)`` (the
dataset's folder or the audio cache; ``train`` is for fine-tuning, Table 5) and returns :class:`UtteranceFile` s.

Synthetic (from ``data/sentences.txt``, via :mod:`mamlib.asr.synth`): ``smoke`` (the shortest sentences, two
espeak-ng voices), ``lj-like`` (hibari's one "heart" voice, for LJ Speech's one reader), ``vctk-like`` (several
espeak-ng accents, for VCTK's accented speakers); ``alsa-real`` is the 8 short real recordings of alsa-utils. Line
``k`` of ``data/sentences.txt`` (topic blocks) is **dev** when ``k`` is odd, **test** when even, id ``s`` plus the
four-digit line number; **train** reads ``data/train_sentences.txt`` (ids ``t``...), sharing no sentence with them.

Real (the GPU preset): ``ljspeech`` (LJ Speech 1.1) and ``vctk`` (VCTK 0.92 or 0.80), split by a stable hash:
``sha256("split:" + key)`` read as a number in [0, 1) below 0.1 is dev, below 0.2 test, the rest train. The key is
the utterance id for LJ Speech and the normalized sentence for VCTK, whose speakers read many of the same
sentences: a sentence never crosses splits. The ``n`` cap keeps the ``n`` utterances with the smallest
``sha256("subset:" + id)`` (the first 100 are inside the first 200), in id order; only their audio is read."""

from __future__ import annotations

import csv
import hashlib
import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mamlib.asr.metrics import normalize_transcript
from mamlib.asr.recognizers import Utterance
from mamlib.asr.synth import synthesize_espeak, synthesize_hibari
from mamlib.common.audio import load_audio
from mamlib.common.datasets import Dataset, file_names, fingerprint, pick
from mamlib.common.paths import unpacked_root

SENTENCES_FILE = Path(__file__).resolve().parents[2] / "data" / "sentences.txt"
TRAIN_SENTENCES_FILE = SENTENCES_FILE.with_name("train_sentences.txt")
SPLITS = ("dev", "test", "train", "all")
#: Upper bounds of the dev and test shares of a real corpus (by hash); the rest is train.
DEV_SHARE, TEST_SHARE = 0.1, 0.2
SMOKE_VOICES = ("en-us", "en-gb")
#: Sentences per split of the smoke corpus when ``n`` is not given.
SMOKE_SIZE = 4
LJ_LIKE_SPEAKER = "hibari-heart"
VCTK_LIKE_VOICES = ("en-us", "en-gb+f3", "en-gb-scotland", "en-029+f2", "en-gb-x-rp", "en-us-nyc+f4", "en-gb-x-gbclan",
                    "en-gb-x-gbcwmd+f1")
ALSA_DIR = Path("/usr/share/sounds/alsa")
ALSA_SPEECH = tuple("Front_Center Front_Left Front_Right Rear_Center Rear_Left Rear_Right Side_Left Side_Right".split())
LJSPEECH_URL = "https://keithito.com/LJ-Speech-Dataset/"
VCTK_URL = "https://datashare.ed.ac.uk/handle/10283/3443"
#: Folders the VCTK releases unpack to (0.92, 0.80).
VCTK_FOLDERS = ("VCTK-Corpus-0.92", "VCTK-Corpus")


@dataclass(frozen=True)
class Sentence:
    """One line of ``data/sentences.txt``: its id (``s0001`` for line 1) and text."""

    id: str
    text: str


def _check_split(split: str, n: int | None = None) -> None:
    """ValueError for an unknown split or a negative count."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be None or non-negative, got {n}")


def sentences(split: str = "all") -> list[Sentence]:
    """The sentences of ``split`` in file order (module docstring); blank lines are skipped."""
    _check_split(split)
    train = split == "train"
    path = TRAIN_SENTENCES_FILE if train else SENTENCES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"sentence list not found: {path} (it ships in the repository's data/ folder)")
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    return [Sentence(f"{'t' if train else 's'}{k:04d}", line.strip()) for k, line in lines
            if line.strip() and split in ("all", "train" if train else "dev" if k % 2 == 1 else "test")]


@dataclass(frozen=True)
class UtteranceFile:
    """An utterance not read yet: its id, audio file, transcript and speaker."""

    id: str
    path: Path
    text: str
    speaker: str

    def load(self) -> Utterance:
        return Utterance(id=self.id, audio=load_audio(self.path), text=self.text, speaker=self.speaker)


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


# -- synthetic ---------------------------------------------------------------------------------------------------


def _read_aloud(prefix: str, sents: Sequence[Sentence], voices: Sequence[str], cache_dir: Path) -> list[UtteranceFile]:
    """Sentence ``k`` read by espeak-ng voice ``voices[k % len(voices)]`` (round robin, so any prefix is balanced
    across speakers); the voice is the speaker and part of the id."""
    return [UtteranceFile(f"{prefix}-{voice}-{s.id}", synthesize_espeak(s.text, voice, cache_dir), s.text, voice)
            for s, voice in zip(sents, itertools.cycle(voices))]


def smoke_corpus(cache_dir: Path, split: str, n: int | None = None) -> list[UtteranceFile]:
    """A tiny two-voice espeak-ng set: the split's ``n`` (default :data:`SMOKE_SIZE`) shortest sentences (fewest
    words, ties by id; ``all``: dev's and test's) in id order, read alternately by ``en-us`` and ``en-gb``."""
    _check_split(split, n)
    if split == "all":
        return smoke_corpus(cache_dir, "dev", n) + smoke_corpus(cache_dir, "test", n)
    pool = sorted(sentences(split), key=lambda s: (len(s.text.split()), s.id))[: SMOKE_SIZE if n is None else n]
    return _read_aloud("smoke", sorted(pool, key=lambda s: s.id), SMOKE_VOICES, cache_dir)


def lj_like_corpus(cache_dir: Path, split: str, n: int | None = None, *, seed: int = 0) -> list[UtteranceFile]:
    """The split's sentences (the first ``n`` when given) read by hibari's bundled voice, one speaker."""
    _check_split(split, n)
    return [UtteranceFile(f"lj-like-{s.id}", synthesize_hibari(s.text, cache_dir, seed=seed), s.text, LJ_LIKE_SPEAKER)
            for s in sentences(split)[:n]]


def vctk_like_corpus(cache_dir: Path, split: str, n: int | None = None, *, voices: Sequence[str] = VCTK_LIKE_VOICES
                     ) -> list[UtteranceFile]:
    """The split's sentences (the first ``n`` when given) read by several espeak-ng accents, in turn."""
    _check_split(split, n)
    if not voices:
        raise ValueError("vctk_like_corpus needs at least one voice")
    return _read_aloud("vctk-like", sentences(split)[:n], voices, cache_dir)


def alsa_transcript(path: str | Path) -> str:
    """The words an alsa-utils test clip says, from its name: ``Front_Center.wav`` -> ``front center``."""
    return " ".join(Path(path).stem.lower().replace("_", " ").split())


def alsa_real_clips(cache_dir: Path, split: str, n: int | None = None, *, directory: str | Path = ALSA_DIR
                    ) -> list[UtteranceFile]:
    """The 8 speech recordings of Debian's alsa-utils in ``directory`` (not ``Noise.wav``). Too few to split: every
    split but train gets the same 8 clips, a real-voice sanity check, never one to choose settings on."""
    _check_split(split, n)
    if split == "train":
        raise ValueError("corpus 'alsa-real' (8 clips) has no train split; fine-tune on another corpus")
    directory = Path(directory)
    if missing := [name for name in ALSA_SPEECH if not (directory / f"{name}.wav").is_file()]:
        raise FileNotFoundError(f"the alsa-utils speech clips are missing from {directory} ({', '.join(missing)}.wav): "
                                "install them with `sudo apt-get install alsa-utils` (or `make setup`)")
    return [UtteranceFile(f"alsa-{name}", directory / f"{name}.wav", alsa_transcript(name), "alsa")
            for name in ALSA_SPEECH][:n]


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
    chosen = [i for i in ids if split == "all" or split_of(i if keys is None else keys[i]) == split]
    if n is not None:
        chosen = sorted(chosen, key=lambda i: (_unit_hash("subset", i), i))[:n]
    return sorted(chosen)


def _find_ljspeech(root: Path) -> Path:
    found = unpacked_root(root, ("LJSpeech-1.1",), lambda c: (c / "metadata.csv").is_file() and (c / "wavs").is_dir())
    if found is not None:
        return found
    raise FileNotFoundError(f"LJ Speech not found at {root}. Download LJSpeech-1.1 from {LJSPEECH_URL} and unpack it "
                            f"so that {root}/metadata.csv (lines 'ID|raw text|normalized text') and {root}/wavs/ID.wav "
                            "exist (the unpacked LJSpeech-1.1 folder itself, or its parent, may be given).")


@cache
def identify_ljspeech(path: str) -> dict[str, Any]:
    """LJ Speech's release and the fingerprint of its metadata and file list."""
    base = _find_ljspeech(Path(path))
    return {"release": "LJSpeech-1.1",
            "fingerprint": fingerprint([(base / "metadata.csv").read_text(encoding="utf-8"),
                                        *file_names(base / "wavs", "*.wav")])}


def ljspeech_corpus(root: str | Path, split: str, n: int | None = None) -> list[UtteranceFile]:
    """LJ Speech 1.1: ``metadata.csv`` (``id|raw|normalized``) and ``wavs/ID.wav``; reference = normalized text."""
    _check_split(split, n)
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
    return [UtteranceFile(uid, base / "wavs" / f"{uid}.wav", texts[uid], "LJ")
            for uid in select_ids(list(texts), split, n)]


#: VCTK's audio layouts: folder, release, an utterance's file name.
_VCTK_LAYOUTS = (("wav48_silence_trimmed", "0.92", "{spk}/{uid}_{mic}.flac"), ("wav48", "0.80", "{spk}/{uid}.wav"))


def _vctk_layout_error(root: Path, why: str) -> FileNotFoundError:
    return FileNotFoundError(f"VCTK not found at {root}: {why}. Download VCTK (0.92) from {VCTK_URL} and unpack it "
                             f"so that {root}/txt/pXXX/pXXX_NNN.txt and {root}/wav48_silence_trimmed/pXXX/pXXX_NNN_mic1"
                             ".flac exist (the older 0.80 layout, wav48/pXXX/pXXX_NNN.wav, also works; so does the "
                             "folder holding VCTK-Corpus-0.92/).")


def _find_vctk(path: str | Path) -> tuple[Path, tuple[str, str, str]]:
    """The VCTK release folder under ``path`` and its audio layout (:data:`_VCTK_LAYOUTS`)."""
    root = unpacked_root(path, VCTK_FOLDERS, lambda c: (c / "txt").is_dir())
    if root is None:
        raise _vctk_layout_error(Path(path), "no txt/ folder")
    if layout := next((lay for lay in _VCTK_LAYOUTS if (root / lay[0]).is_dir()), None):
        return root, layout
    raise _vctk_layout_error(root, "neither wav48_silence_trimmed/ nor wav48/ is there")


@cache
def identify_vctk(path: str) -> dict[str, Any]:
    """VCTK's release (0.92 or 0.80) and the fingerprint of its transcripts and file list."""
    root, (audio, release, _) = _find_vctk(path)
    texts = [f"{name}\t{(root / 'txt' / name).read_text(encoding='utf-8', errors='replace').strip()}"
             for name in file_names(root / "txt", "*/*.txt")]
    return {"release": f"VCTK {release}", "fingerprint": fingerprint([*texts, *file_names(root / audio, "*/*")])}


def vctk_corpus(root: str | Path, split: str, n: int | None = None, *, mic: str = "mic1") -> list[UtteranceFile]:
    """VCTK 0.92 (``wav48_silence_trimmed``, FLAC, ``mic``) or 0.80 (``wav48``, WAV); speaker = ``pXXX``.
    Transcripts without a recording (a few exist in the release) are skipped with a warning."""
    _check_split(split, n)
    root, (audio, _, name) = _find_vctk(root)
    items: dict[str, UtteranceFile] = {}
    skipped: list[str] = []
    for speaker in sorted(d for d in (root / "txt").iterdir() if d.is_dir()):
        found = [UtteranceFile(txt.stem, root / audio / name.format(spk=speaker.name, uid=txt.stem, mic=mic),
                               txt.read_text(encoding="utf-8", errors="replace").strip(), speaker.name)
                 for txt in sorted(speaker.glob("*.txt"))]
        present = {f.id: f for f in found if f.path.is_file()}
        if found and not present:
            raise _vctk_layout_error(root, f"speaker {speaker.name} has {len(found)} transcripts but none of its "
                                           f"recordings, e.g. {found[0].path} (mic {mic!r})")
        items |= present
        skipped += [f.id for f in found if f.id not in present]
    if not items:
        raise _vctk_layout_error(root, f"no transcript in txt/ has a matching recording under {root / audio}")
    if skipped:
        warnings.warn(f"VCTK: {len(skipped)} transcripts have no {audio} recording and are skipped "
                      f"(e.g. {', '.join(skipped[:3])})", stacklevel=2)
    keys = {uid: normalize_transcript(f.text) for uid, f in items.items()}
    return [items[uid] for uid in select_ids(list(items), split, n, keys)]


# -- the registry's ASR entries, and the one way in --------------------------------------------------------------

ASR_DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("smoke", smoke_corpus, "LJ Speech", made="synthetic (espeak-ng)"),
    Dataset("lj-like", lj_like_corpus, "LJ Speech", made="synthetic (one hibari TTS voice)"),
    Dataset("vctk-like", vctk_like_corpus, "VCTK", made="synthetic (espeak-ng accents)"),
    # Eight two-word phrases by one real voice are not LJ Speech's read book sentences: no counterpart.
    Dataset("alsa-real", alsa_real_clips, made="real (alsa-utils recordings)"),
    Dataset("ljspeech", ljspeech_corpus, "LJ Speech", "MAM_LJSPEECH", f"LJ Speech 1.1 — {LJSPEECH_URL}",
            identify_ljspeech, made="real (LJ Speech 1.1)"),
    Dataset("vctk", vctk_corpus, "VCTK", "MAM_VCTK", f"VCTK 0.92 — {VCTK_URL}", identify_vctk, made="real (VCTK)"),
)}


def load_corpus(dataset: str, split: str, *, cache_dir: str | Path | None = None, path: str | Path | None = None,
                n: int | None = None, stream: bool = False, **options: Any) -> list[Utterance] | OnDisk:
    """The utterances of ASR dataset ``dataset`` (:data:`ASR_DATASETS`) for ``split``: ``path`` is the folder of one
    read from disk, ``cache_dir`` holds synthesized audio, ``n`` caps the count, ``stream=True`` leaves the audio on
    disk until used (:class:`OnDisk`), ``options`` go to the loader (its keyword-only arguments)."""
    entry = pick(ASR_DATASETS, dataset, "ASR dataset")
    files = entry.load(entry.folder(path, cache_dir), split, n, **options)
    return OnDisk(files) if stream else [f.load() for f in files]
