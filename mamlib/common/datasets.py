"""What a dataset *is*: its entry in the dataset registry (:class:`Dataset`, declared next to its loader, found by
:func:`mamlib.presets.schema.find_dataset`) and, for one read from disk, its identity in the results keys — name,
release and a fingerprint of its file list and transcripts or labels, never where it lies: a moved folder keeps its
results, edited data does not. Audio content is not hashed (tens of gigabytes on every build); each ``identify`` is
computed once per folder and process."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamlib.common.paths import cache_root


@dataclass(frozen=True)
class Dataset:
    """A dataset a preset may name: its loader (keyword-only arguments: the options a preset may set), the paper's
    dataset it stands in for (None: none comparable) and, for one read from a folder the user names, ``path_env``
    (the paper preset's variable for it), ``source`` (where to get it) and ``identify`` (release and fingerprint);
    ``made`` says how its audio was made, for the book's description of the data (Sec. 4's setup)."""

    name: str
    load: Callable[..., Any]
    paper: str | None = None
    path_env: str | None = None
    source: str = ""
    identify: Callable[[str], dict[str, Any]] | None = None
    made: str = ""

    def folder(self, path: str | Path | None, cache_dir: str | Path | None, setting: str = "path=") -> Path:
        """What the loader reads from: the dataset's folder ``path`` (FileNotFoundError, saying where to get it, when
        none is given as ``setting``) for one read from a folder, else the cache folder (default: the project's)."""
        if self.path_env is None:
            return cache_root(cache_dir)
        if not path:
            raise FileNotFoundError(f"dataset {self.name!r} is read from its downloaded folder, and none is given: "
                                    f"set {setting} (the paper preset reads ${self.path_env}); get it: {self.source}")
        return Path(path)

    def identity(self, path: str | Path) -> dict[str, Any]:
        """``{"name", "release", "fingerprint"}`` of this dataset at ``path`` (the release folder or the folder
        holding it), the same wherever the folder lies. A dataset without ``identify`` keeps its path (``{"name",
        "path"}``), so a different folder is still a different result."""
        if self.identify is None:
            return {"name": self.name, "path": str(path)}
        return {"name": self.name, **self.identify(str(Path(path).expanduser().resolve()))}


def pick(entries: Mapping[str, Dataset], name: str, what: str = "dataset") -> Dataset:
    """``entries[name]``; ValueError naming ``what`` and the known names otherwise."""
    if name not in entries:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(entries)}")
    return entries[name]


def fingerprint(entries: Iterable[str]) -> str:
    """sha256 of the entries, one per line, in the order given (callers sort them)."""
    return hashlib.sha256(b"".join(e.encode("utf-8", "surrogateescape") + b"\n" for e in entries)).hexdigest()


def file_names(folder: Path, pattern: str) -> list[str]:
    """The files under ``folder`` matching ``pattern``, as sorted paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.glob(pattern) if p.is_file())
