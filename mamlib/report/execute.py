"""Execute the book's chapters on a preset with papermill: ``make book``'s first step, in one process or sharded.

``python -m mamlib.report.execute --preset mini --out _build/executed book/01_….ipynb …`` runs each notebook with
its ``preset`` parameter set, writing the executed copy to ``OUT/book/`` and papermill's log to ``OUT/<name>.log``
(the log's tail is printed when a chapter fails). While a chapter runs, the console shows what it computes: each
sweep or fine-tuning grid as it starts (configurations in all, read from the store, to compute) and a bar with the
configurations done and an ETA from the measured time per configuration; each chapter ends with one summary line.
The progress travels through a side file (:data:`~mamlib.sweeps.store.PROGRESS_ENV`), so the executed notebooks
carry none of it.

``--device cuda`` runs the preset on another device (``make book DEVICE=cuda``): a preset that ``extends`` the named
one with only ``device`` changed is written beside the output; the device is part of every results key.

Under ``accelerate launch --multi_gpu --num_processes N -m mamlib.report.execute …`` every rank executes every
chapter and each sweep splits its configurations among the ranks through the results store
(:func:`mamlib.sweeps.store.run_grid`); fine-tuning runs data-parallel on all of them. Rank 0 writes the executed
notebooks the book is rendered from and shows the progress; the other ranks' copies and logs go to ``OUT/rank-K/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from mamlib.presets.schema import load_preset
from mamlib.sweeps.store import PROGRESS_ENV, process_rank


def device_preset(preset: str, device: str, folder: Path) -> str:
    """The path of a preset that extends ``preset`` with only ``device`` changed (written into ``folder``)."""
    name = load_preset(preset).name
    path = folder / f"preset-{name}-{device.replace(':', '-')}.yml"
    base = preset if not Path(preset).suffix else str(Path(preset).resolve())
    path.write_text(f"extends: {json.dumps(base)}\nname: {json.dumps(name)}\ndevice: {json.dumps(device)}\n")
    return str(path)


class ConsoleProgress:
    """Follows one chapter's progress file and shows it on the console (see module)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled, self.offset = path, enabled, 0
        self.bar: tqdm | None = None
        self.computed = self.stored = 0

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path) as f:
            f.seek(self.offset)
            lines = f.readlines()
            self.offset = f.tell()
        for line in lines:
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
            device: str | None = None) -> None:
    """Execute ``notebooks`` in order on ``preset`` (see module); raises RuntimeError naming the failed chapter."""
    rank, world = process_rank()
    folder = Path(out) if rank == 0 else Path(out) / f"rank-{rank}"
    (folder / "book").mkdir(parents=True, exist_ok=True)
    if device:
        preset = device_preset(preset, device, folder)
    for nb in map(Path, notebooks):
        tag = f" [rank {rank}/{world}]" if world > 1 else ""
        print(f"== {nb} ({load_preset(preset).name}{', ' + device if device else ''}){tag}", flush=True)
        log, progress_file = folder / f"{nb.stem}.log", folder / f"{nb.stem}.progress"
        progress_file.unlink(missing_ok=True)
        progress = ConsoleProgress(progress_file, enabled=rank == 0)
        start = time.perf_counter()
        with open(log, "w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "papermill", str(nb), str(folder / "book" / nb.name), "-p", "preset", preset,
                 "--cwd", str(cwd), "--log-output", "--no-progress-bar"], stdout=sink, stderr=subprocess.STDOUT,
                env={**os.environ, PROGRESS_ENV: str(progress_file.resolve())})
            while proc.poll() is None:
                progress.poll()
                time.sleep(0.5)
        progress.finish()
        if proc.returncode:
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            raise RuntimeError(f"{nb} failed on preset {preset}{tag}; the whole log is {log}")
        minutes, seconds = divmod(time.perf_counter() - start, 60)
        print(f"   {nb.stem} done in {int(minutes)} min {seconds:.0f} s: {progress.computed} configurations "
              f"computed, {progress.stored} read from the store", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamlib.report.execute", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="chapter notebooks, in the order to execute them")
    parser.add_argument("--preset", required=True, help="a preset name or the path of a preset YAML file")
    parser.add_argument("--out", required=True, help="folder for the executed notebooks (book/) and the logs")
    parser.add_argument("--cwd", default="book", help="working directory of the notebooks (default: book)")
    parser.add_argument("--device", default=None, help="run the preset on this device instead (e.g. cuda)")
    args = parser.parse_args(argv)
    try:
        execute(args.notebooks, args.preset, args.out, args.cwd, args.device or None)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
