"""Where things live: the one cache-directory rule, and paths given directly or through an environment variable."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

#: Environment variable that overrides the cache directory.
CACHE_ENV = "MAM_CACHE_DIR"


def repo_root() -> Path | None:
    """The directory holding ``pyproject.toml`` above this file (a source checkout), or None when installed."""
    return next((p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()), None)


def cache_root(cache_dir: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$MAM_CACHE_DIR``, else ``<repo root>/_cache`` inside a
    source checkout, else ``~/.cache/mamlib``. Created unless ``create=False``."""
    if given := cache_dir or os.environ.get(CACHE_ENV):
        root = Path(given).expanduser()
    else:
        repo = repo_root()
        root = repo / "_cache" if repo is not None else Path.home() / ".cache" / "mamlib"
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def resolve_path(path: str | None, path_env: str | None) -> str | None:
    """``path`` when set, else the value of the environment variable ``path_env`` (None when neither is set)."""
    return str(path) if path else (os.environ.get(path_env) or None if path_env else None)


def unpacked_root(root: str | os.PathLike[str], folder_names: Sequence[str], looks_right: Callable[[Path], bool]
                  ) -> Path | None:
    """A dataset's folder: ``root`` itself when ``looks_right`` of it, else the first of ``root/<name>`` for
    ``folder_names`` (the folders its release unpacks to, e.g. ``ESC-50-master``) that does; None when none does.
    Users may point at the unpacked folder or at the folder they unpacked it into."""
    root = Path(root)
    return next((c for c in (root, *(root / n for n in folder_names)) if looks_right(c)), None)
