"""Execute the book's chapters on a preset with papermill: ``make book``'s first step, in one process or sharded.

``python -m mamlib.report.execute --preset mini --out _build/executed book/01_….ipynb …`` runs each notebook with
its ``preset`` parameter set, writing the executed copy to ``OUT/book/`` and papermill's log to ``OUT/<name>.log``
(the log's tail is printed when a chapter fails). While a chapter runs, the console shows what it computes: each
sweep or fine-tuning grid as it starts (configurations in all, read from the store, to compute) and a bar with the
configurations done and an ETA from the measured time per configuration; each chapter ends with one summary line.
The progress travels through a side file (:data:`~mamlib.sweeps.store.PROGRESS_ENV`), so the executed notebooks
carry none of it; what the chapter looked up in the store through another (:data:`~mamlib.sweeps.store.LOOKUPS_ENV`).

A chapter is executed again only when something it depends on changed: after each run the executed notebook is kept
in the cache (``executed/``) with a manifest of what produced it — the notebook, the preset as resolved (its mapping
after ``extends``, and the path each ``path_env`` in it resolves to now, whatever the variable's name), mamlib's
sources and presets, the repository's ``data/``, the ``MAM_*`` environment, and every result the chapter looked up in
the store: each one it read or wrote with its content hash, and each one it found absent (the front page and the
chapters that only read results report those "absent"). A later build whose inputs are the same copies that notebook
instead of re-running it only if every result it read is unchanged and every result it found absent is still absent:
a page never outlives its evidence, so a page that said "absent" runs again once that result is stored (e.g. the
front page when the chapters are built in more than one go). ``--fresh`` re-runs everything. So a warm re-render
re-executes nothing.

``--device cuda`` runs the preset on another device (``make book DEVICE=cuda``): a preset that ``extends`` the named
one with only ``device`` changed is written beside the output; the device is part of every results key.

Under ``accelerate launch --multi_gpu --num_processes N -m mamlib.report.execute …`` every rank executes every
chapter and each sweep splits its configurations among the ranks through the results store
(:func:`mamlib.sweeps.store.run_grid`); so do Table 5's fine-tuning runs, each trained whole by one process.
Rank 0 writes the executed notebooks the book is rendered from and shows the progress; the other ranks' copies and
logs go to ``OUT/rank-K/``.

The kernels start with :data:`KERNEL_ENV`'s glibc malloc settings unless the environment sets them already.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mamlib.common.paths import cache_root, repo_root, resolve_path
from mamlib.presets.schema import load_preset
from mamlib.sweeps.store import LISTING, LOOKUPS_ENV, PROGRESS_ENV, listing, process_rank


def device_preset(preset: str, device: str, folder: Path) -> str:
    """The path of a preset that extends ``preset`` with only ``device`` changed (written into ``folder``)."""
    name = load_preset(preset).name
    path = folder / f"preset-{name}-{device.replace(':', '-')}.yml"
    base = preset if not Path(preset).suffix else str(Path(preset).resolve())
    path.write_text(f"extends: {json.dumps(base)}\nname: {json.dumps(name)}\ndevice: {json.dumps(device)}\n")
    return str(path)


#: glibc malloc settings for the notebook kernels: with its defaults, every block above 32 MB (a 30 s Whisper window's
#: activations) is mapped afresh and faults its pages in on each allocation; a fixed 1 GiB mmap threshold keeps freed
#: blocks in the heap for reuse (1.13x faster transcription, same transcripts: benchmarks/bench_malloc.py).
KERNEL_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _current_hash(entry: str) -> str | None:
    """What a manifest entry is now: the sha256 of a result file (None when there is none, or it cannot be read)
    or of a results folder's :func:`~mamlib.sweeps.store.listing`."""
    if entry.startswith(LISTING):
        return hashlib.sha256(listing(Path(entry[len(LISTING):]))).hexdigest()
    try:
        return _sha256(Path(entry))
    except OSError:
        return None


def looked_up(path: Path) -> dict[str, str | None]:
    """The manifest in a chapter's lookups file (:func:`~mamlib.sweeps.store.note_lookup`): every result it looked
    up → the sha256 of what it read or wrote or, if it only found the result absent, of what lay there (None: no
    file); a listed folder → the hash of its listing."""
    manifest: dict[str, str | None] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        entry, sha, found = json.loads(line)
        if found:
            manifest[entry] = sha
        else:  # a result read or written later in the chapter keeps its hash
            manifest.setdefault(entry, sha)
    return manifest


def environment_paths(raw: Any, where: str = "preset") -> dict[str, str | None]:
    """Every path a preset mapping ``raw`` takes from the environment, as it resolves now: the location of each
    mapping that names a ``path_env`` (a corpus, ``aec.data``, a model's ``options``) → the path it resolves to
    (its own ``path`` when set, else the variable's value; None when neither is set)."""
    found: dict[str, str | None] = {}
    if isinstance(raw, Mapping):
        if isinstance(raw.get("path_env"), str):
            found[where] = resolve_path(raw.get("path"), raw["path_env"])
        for key, value in raw.items():
            found.update(environment_paths(value, f"{where}.{key}"))
    elif isinstance(raw, (list, tuple)):
        for i, value in enumerate(raw):
            found.update(environment_paths(value, f"{where}[{i}]"))
    return found


def library_digest() -> str:
    """A hash of what every chapter's output depends on besides its notebook, preset and stored results: mamlib's
    sources and presets, the repository's ``data/`` files, the cache folder and the ``MAM_*`` environment."""
    package = Path(__file__).resolve().parents[1]
    files = sorted([*package.rglob("*.py"), *package.rglob("*.yml")])
    root = repo_root()
    if root is not None and (root / "data").is_dir():
        files += sorted(p for p in (root / "data").rglob("*") if p.is_file())
    h = hashlib.sha256(str(cache_root()).encode())
    for path in files:
        h.update(f"{path.relative_to(package.parent)}:{_sha256(path)}".encode())
    env = {k: v for k, v in os.environ.items() if k.startswith("MAM_") and k not in (PROGRESS_ENV, LOOKUPS_ENV)}
    h.update(json.dumps(env, sort_keys=True).encode())
    return h.hexdigest()


class ChapterCache:
    """Executed chapters kept with the manifest of what produced them (see module)."""

    def __init__(self, folder: Path, library: str) -> None:
        self.folder, self.library = folder, library

    def inputs(self, nb: Path, preset: str) -> str:
        """A hash of what the chapter ``nb`` depends on besides the results store: the library digest, the notebook
        and the preset as a chapter sees it — its mapping as written (after ``extends``) and every path in it that
        comes from the environment, resolved (:func:`environment_paths`)."""
        mapping = load_preset(preset).raw
        raw = json.dumps({"preset": mapping, "environment": environment_paths(mapping)}, sort_keys=True, default=str)
        return hashlib.sha256(f"{self.library}:{_sha256(nb)}:{raw}".encode()).hexdigest()

    def reuse(self, nb: Path, preset: str, target: Path) -> int | None:
        """Copy the kept notebook of ``nb`` to ``target`` if nothing it depends on changed — its inputs, every
        result it read (same content) and every result it found absent (still absent); the number of results it
        looked up (read or found absent), or None when it must run."""
        manifest, kept = self.folder / f"{nb.stem}.json", self.folder / nb.name
        try:
            record = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        results = record.get("results", {})
        if (record.get("inputs") != self.inputs(nb, preset) or not kept.is_file()
                or not all(_current_hash(f) == sha for f, sha in results.items())):
            return None
        shutil.copyfile(kept, target)
        return len(results)

    def keep(self, nb: Path, preset: str, executed: Path, results: Mapping[str, str | None]) -> None:
        """Keep ``executed`` with its manifest (``results``: each result the chapter looked up → the sha256 of what
        it found, None for a result it found absent)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, self.folder / f".{nb.name}.part")
        (self.folder / f".{nb.stem}.json.part").write_text(json.dumps({"inputs": self.inputs(nb, preset),
                                                                     "results": dict(results)}))
        os.replace(self.folder / f".{nb.name}.part", self.folder / nb.name)
        os.replace(self.folder / f".{nb.stem}.json.part", self.folder / f"{nb.stem}.json")


class ConsoleProgress:
    """Follows one chapter's progress file and shows it on the console (see module)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled, self.offset = path, enabled, 0
        self.bar: tqdm | None = None
        self.computed = self.stored = 0

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read whole on the next poll
        self.offset += end
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "grid":
                self.stored += event["total"] - event["todo"]
                self._close()
                if self.enabled and event["todo"]:
                    tqdm.write(f"   {event['desc']}: {event['total']} configurations, {event['stored']} stored, "
                               f"{event['todo']} to compute", file=sys.stderr)
                    self.bar = tqdm(total=event["todo"], desc=f"   {event['desc'][:48]}", file=sys.stderr,
                                    mininterval=1 if sys.stderr.isatty() else 30, leave=False)
            elif event.get("event") == "done":
                self.computed += 1
                if self.bar is not None:
                    self.bar.update(1)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self) -> None:
        self.poll()
        self._close()


def execute(notebooks: Sequence[str | Path], preset: str, out: str | Path, cwd: str | Path = "book",
            device: str | None = None, fresh: bool = False) -> None:
    """Execute ``notebooks`` in order on ``preset`` (see module); raises RuntimeError naming the failed chapter."""
    rank, world = process_rank()
    folder = Path(out) if rank == 0 else Path(out) / f"rank-{rank}"
    (folder / "book").mkdir(parents=True, exist_ok=True)
    if device:
        preset = device_preset(preset, device, folder)
    chapters = ChapterCache(cache_root() / "executed" / load_preset(preset).name, library_digest()) \
        if world == 1 else None
    for nb in map(Path, notebooks):
        tag = f" [rank {rank}/{world}]" if world > 1 else ""
        print(f"== {nb} ({load_preset(preset).name}{', ' + device if device else ''}){tag}", flush=True)
        log, progress_file, lookups = (folder / f"{nb.stem}{ext}" for ext in (".log", ".progress", ".lookups"))
        for side_file in (progress_file, lookups):
            side_file.unlink(missing_ok=True)
        used = None if fresh or chapters is None else chapters.reuse(nb, preset, folder / "book" / nb.name)
        if used is not None:
            print(f"   {nb.stem} reused: notebook, preset, library and the {used} results it looked up in the store "
                  "(read or absent) unchanged", flush=True)
            continue
        progress = ConsoleProgress(progress_file, enabled=rank == 0)
        start = time.perf_counter()
        with open(log, "w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "papermill", str(nb), str(folder / "book" / nb.name), "-p", "preset", preset,
                 "--cwd", str(cwd), "--log-output", "--no-progress-bar"], stdout=sink, stderr=subprocess.STDOUT,
                env={**KERNEL_ENV, **os.environ, PROGRESS_ENV: str(progress_file.resolve()),
                     **({LOOKUPS_ENV: str(lookups.resolve())} if chapters is not None else {})})
            while proc.poll() is None:
                progress.poll()
                time.sleep(0.5)
        progress.finish()
        if proc.returncode:
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            raise RuntimeError(f"{nb} failed on preset {preset}{tag}; the whole log is {log}")
        if chapters is not None:
            chapters.keep(nb, preset, folder / "book" / nb.name, looked_up(lookups))
        minutes, seconds = divmod(time.perf_counter() - start, 60)
        print(f"   {nb.stem} done in {int(minutes)} min {seconds:.0f} s: {progress.computed} configurations "
              f"computed, {progress.stored} read from the store{tag}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamlib.report.execute", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="chapter notebooks, in the order to execute them")
    parser.add_argument("--preset", required=True, help="a preset name or the path of a preset YAML file")
    parser.add_argument("--out", required=True, help="folder for the executed notebooks (book/) and the logs")
    parser.add_argument("--cwd", default="book", help="working directory of the notebooks (default: book)")
    parser.add_argument("--device", default=None, help="run the preset on this device instead (e.g. cuda)")
    parser.add_argument("--fresh", action="store_true", help="execute every chapter, even unchanged ones")
    args = parser.parse_args(argv)
    try:
        execute(args.notebooks, args.preset, args.out, args.cwd, args.device or None, args.fresh)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
