"""Execute the book's chapters on a preset with papermill: ``make book``'s first step, in one process or sharded.

``python -m mamlib.report.execute --preset mini --out _build/executed book/01_….ipynb …`` runs each notebook with
its ``preset`` parameter set, writing the executed copy to ``OUT/book/`` and papermill's log to ``OUT/<name>.log``
(the log's tail is printed when a chapter fails). Under ``accelerate launch --multi_gpu --num_processes N -m
mamlib.report.execute …`` every rank executes every chapter and each sweep splits its configurations among the
ranks through the results store (:func:`mamlib.sweeps.store.run_grid`); fine-tuning runs data-parallel on all of
them. Rank 0 writes the executed notebooks the book is rendered from; the other ranks' copies and logs go to
``OUT/rank-K/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mamlib.sweeps.store import process_rank


def execute(notebooks: Sequence[str | Path], preset: str, out: str | Path, cwd: str | Path = "book") -> None:
    """Execute ``notebooks`` in order on ``preset`` (see module); raises RuntimeError naming the failed chapter."""
    rank, world = process_rank()
    folder = Path(out) if rank == 0 else Path(out) / f"rank-{rank}"
    (folder / "book").mkdir(parents=True, exist_ok=True)
    for nb in map(Path, notebooks):
        tag = f" [rank {rank}/{world}]" if world > 1 else ""
        print(f"== {nb} ({preset}){tag}", flush=True)
        log = folder / f"{nb.stem}.log"
        with open(log, "w") as sink:
            done = subprocess.run(
                [sys.executable, "-m", "papermill", str(nb), str(folder / "book" / nb.name), "-p", "preset", preset,
                 "--cwd", str(cwd), "--log-output", "--no-progress-bar"], stdout=sink, stderr=subprocess.STDOUT)
        if done.returncode:
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            raise RuntimeError(f"{nb} failed on preset {preset}{tag}; the whole log is {log}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamlib.report.execute", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="chapter notebooks, in the order to execute them")
    parser.add_argument("--preset", required=True, help="a preset name or the path of a preset YAML file")
    parser.add_argument("--out", required=True, help="folder for the executed notebooks (book/) and the logs")
    parser.add_argument("--cwd", default="book", help="working directory of the notebooks (default: book)")
    args = parser.parse_args(argv)
    try:
        execute(args.notebooks, args.preset, args.out, args.cwd)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
