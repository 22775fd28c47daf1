"""A named registry — one implementation behind the attention families and the source variants."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name, in registration order; ``what`` names them in error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name`` (ValueError if the name is taken, unless ``replace``)."""
        if name in self._entries and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered (pass replace=True)")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry called ``name``; a ValueError lists the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.what} {name!r}; registered: {list(self._entries)}") from None

    def all(self) -> dict[str, T]:
        """A copy of the registry, by name."""
        return dict(self._entries)
