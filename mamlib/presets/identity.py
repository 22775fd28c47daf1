"""What a dataset read from disk *is*, for the results keys: its name, its release and a fingerprint of its file list
and transcripts or labels — never where it lies.

A results key that held the dataset's absolute path would recompute every sweep when the folder moves, or when a
user names the folder holding the release instead of the release itself (both documented as fine). A key holding
the identity survives both, and still changes when the data does (a file added, removed or renamed, a transcript
or a label edited). Audio content is not read (hashing tens of gigabytes on every build would cost more than it
protects); a re-encoded file under the same name keeps its key.

The fingerprint is computed once per folder and process (a VCTK release has 44 k transcript files to read).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any


def fingerprint(entries: Iterable[str]) -> str:
    """sha256 of the entries, one per line, in the order given (callers sort them)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry.encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()


def _names(folder: Path, pattern: str) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.glob(pattern) if p.is_file())


@cache
def _ljspeech(path: str) -> dict[str, Any]:
    from mamlib.asr.corpora import _find_ljspeech

    base = _find_ljspeech(Path(path))
    return {"release": "LJSpeech-1.1",
            "fingerprint": fingerprint([(base / "metadata.csv").read_text(encoding="utf-8"),
                                        *_names(base / "wavs", "*.wav")])}


@cache
def _vctk(path: str) -> dict[str, Any]:
    from mamlib.asr.corpora import VCTK_FOLDERS
    from mamlib.common.paths import unpacked_root

    root = unpacked_root(path, VCTK_FOLDERS, lambda c: (c / "txt").is_dir())
    if root is None:
        from mamlib.asr.corpora import _vctk_layout_error

        raise _vctk_layout_error(Path(path), "no txt/ folder")
    audio = "wav48_silence_trimmed" if (root / "wav48_silence_trimmed").is_dir() else "wav48"
    release = "0.92" if audio == "wav48_silence_trimmed" else "0.80"
    texts = [f"{name}\t{(root / 'txt' / name).read_text(encoding='utf-8', errors='replace').strip()}"
             for name in _names(root / "txt", "*/*.txt")]
    return {"release": f"VCTK {release}", "fingerprint": fingerprint([*texts, *_names(root / audio, "*/*")])}


@cache
def _esc50(path: str) -> dict[str, Any]:
    from mamlib.common.paths import unpacked_root

    source = Path(path)
    archive = unpacked_root(source, ("ESC-50-master",), lambda c: (c / "meta" / "esc50.csv").is_file())
    if archive is not None:
        return {"release": "ESC-50 archive",
                "fingerprint": fingerprint([(archive / "meta" / "esc50.csv").read_text(encoding="utf-8"),
                                            *_names(archive / "audio", "*.wav")])}
    files = [source] if source.is_file() else sorted(source.glob("*.parquet"))
    if not files:
        from mamlib.aec.esc50 import load_esc50

        load_esc50(source)  # raises the loader's own message: where to get ESC-50 and the layouts it reads
    return {"release": "ESC-50 parquet",
            "fingerprint": fingerprint(f"{f.name}\t{f.stat().st_size}" for f in files)}


#: Datasets read from a folder the user names, and how each is identified.
IDENTIFIED: dict[str, Callable[[str], dict[str, Any]]] = {"ljspeech": _ljspeech, "vctk": _vctk, "esc50": _esc50}


def dataset_identity(dataset: str, path: str) -> dict[str, Any]:
    """``{"name", "release", "fingerprint"}`` of the ``dataset`` at ``path`` (the release folder or the folder holding
    it), the same wherever the folder lies. A dataset without an identifier keeps its path (``{"name", "path"}``),
    so a different folder is still a different result."""
    identify = IDENTIFIED.get(dataset)
    if identify is None:
        return {"name": dataset, "path": str(path)}
    return {"name": dataset, **identify(str(Path(path).expanduser().resolve()))}
