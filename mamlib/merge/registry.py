"""A named registry — one implementation behind the attention families and the source variants."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Entries by their ``name``, in registration order; ``what`` names them in error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under its name (ValueError if the name is taken, unless ``replace``)."""
        if entry.name in self._entries and not replace:
            raise ValueError(f"{self.what} {entry.name!r} is already registered (pass replace=True)")
        self._entries[entry.name] = entry
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
