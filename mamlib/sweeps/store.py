"""A results store keyed by the exact configuration that produced each result, and a resumable grid runner.

Each result is one JSON file named by the hash of its configuration, written atomically (temporary file, then
``os.replace``). An interrupted sweep therefore resumes where it stopped: finished configurations are read back,
never recomputed or duplicated, and a half-written file never becomes visible. Re-rendering the book reuses the
store; a change of configuration (or of mamlib's version, which every key includes) computes afresh.

Under ``accelerate launch`` (several processes, e.g. one per GPU) the store on a shared disk is the only
coordination: :func:`run_grid` gives configuration ``i`` of a grid to rank ``i mod N``, each rank computes the ones
of its share that are not stored yet, then waits until the other ranks' results can be read. Each configuration is
computed once; a launch that is killed resumes, when started again, from what was stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mamlib import __version__


def config_key(config: Mapping[str, Any]) -> str:
    """A stable hash of ``config`` as stored (canonical JSON: sorted keys, no whitespace) plus mamlib's version."""
    payload = json.dumps({"config": json.loads(json.dumps(config)), "mamlib": __version__}, sort_keys=True,
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _read(path: Path) -> tuple[bytes | None, Any]:
    """The bytes of a stored record (None when it cannot be read) and the JSON they hold (None when they hold none)."""
    try:
        data = path.read_bytes()
        return data, json.loads(data.decode("utf-8"))
    except OSError:
        return None, None
    except (UnicodeDecodeError, ValueError):
        return data, None


def _well_formed(record: Any) -> bool:
    return isinstance(record, dict) and all(isinstance(record.get(k), dict) for k in ("config", "result"))


class ResultStore:
    """Results on disk under ``root``, one ``<key>.json`` per configuration."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, config: Mapping[str, Any]) -> Path:
        return self.root / f"{config_key(config)}.json"

    def __contains__(self, config: Mapping[str, Any]) -> bool:
        return self.get(config) is not None

    def get(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result for ``config``, or None — also for any unreadable or ill-formed record (binary
        garbage, JSON that is not an object, a record for another configuration or without its result), which the
        next :meth:`put` then replaces. The lookup is noted, found or absent (:func:`note_lookup`)."""
        path = self._path(config)
        data, record = _read(path)
        found = _well_formed(record) and record["config"] == json.loads(json.dumps(config))
        note_lookup(str(path.resolve()), data, found=found)
        return record["result"] if found else None

    def put(self, config: Mapping[str, Any], result: Mapping[str, Any],
            compute: Mapping[str, Any] | None = None) -> None:
        """Store ``result`` for ``config`` atomically, with what computing it cost (``compute``: wall seconds, the
        hardware, when) beside it — never part of the result or of the key."""
        path = self._path(config)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        record = {"config": config, "result": result, **({} if compute is None else {"compute": dict(compute)})}
        data = json.dumps(record).encode()
        tmp.write_bytes(data)
        os.replace(tmp, path)
        note_lookup(str(path.resolve()), data)

    def records(self) -> list[dict[str, Any]]:
        """Every well-formed record that this mamlib keys (config, result and, when it was recorded, compute): one
        under another key, e.g. of another version, is stale. The listing and each record read are noted
        (:func:`note_lookup`): a page that shows the whole store runs again when either changes."""
        names = listing(self.root)  # one scan: the names noted are the files read
        note_lookup(LISTING + str(self.root.resolve()), names)
        records = []
        for path in (self.root / name for name in names.decode().splitlines()):
            data, record = _read(path)
            note_lookup(str(path.resolve()), data)
            if _well_formed(record) and path == self._path(record["config"]):
                records.append(record)
        return records

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*.json"))


def process_rank() -> tuple[int, int]:
    """This process's rank and the number of processes, from ``RANK`` and ``WORLD_SIZE`` as ``accelerate launch``
    (torchrun) sets them; ``(0, 1)`` for a plain run."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as err:
        raise ValueError(f"RANK / WORLD_SIZE must be integers: {err}") from err
    if not 0 <= rank < world:
        raise ValueError(f"RANK {rank} is not in [0, WORLD_SIZE={world})")
    return rank, world


#: Environment variable naming a file to which :func:`run_grid` appends its progress (grids started, configurations
#: done) as JSON lines, shown on the console by :mod:`mamlib.report.execute` while the notebook's output stays clean.
PROGRESS_ENV = "MAM_PROGRESS_FILE"
#: Environment variable naming a file to which the store appends what a chapter looked up (:func:`note_lookup`): the
#: manifest by which :mod:`mamlib.report.execute`'s chapter cache decides whether a kept page is stale.
LOOKUPS_ENV = "MAM_LOOKUPS_FILE"
#: Prefix of a looked-up entry that is a results folder's listing rather than one result.
LISTING = "listing:"


def _append(env: str, record: Any) -> None:
    """Append ``record`` as a JSON line to the file named by ``$env``, if any (never fails the work)."""
    if path := os.environ.get(env):
        with suppress(OSError), open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def note_lookup(entry: str, data: bytes | None, found: bool = True) -> None:
    """Append ``[entry, sha256 of data, found]`` to ``$MAM_LOOKUPS_FILE``, if set: a result file a chapter read or
    wrote (``data``: its content), or found absent (``found=False``; ``data``: what lay at its path, None for no
    file), or :data:`LISTING` + a folder it listed whole (``data``: :func:`listing`)."""
    if os.environ.get(LOOKUPS_ENV):
        _append(LOOKUPS_ENV, [entry, None if data is None else hashlib.sha256(data).hexdigest(), found])


def listing(root: Path) -> bytes:
    """The sorted names of the records in a results folder, one a line (what :meth:`ResultStore.records` reads)."""
    return "\n".join(sorted(p.name for p in Path(root).glob("*.json"))).encode()


@functools.cache
def hardware(device: str) -> str:
    """What ``device`` is on this machine, for the compute record: the GPU's name, or the CPU's model and the
    cores this process may use."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or platform.machine()
    with suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), model)
    return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


#: How long a rank waits for the other ranks' share of a grid before it gives up (seconds; ``MAM_SHARD_TIMEOUT``).
SHARD_TIMEOUT = 24 * 3600.0


def run_grid(
    configs: Sequence[Mapping[str, Any]],
    evaluate: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    store: ResultStore,
    *,
    desc: str = "sweep",
    progress: bool = True,
    poll_seconds: float = 0.5,
) -> list[dict[str, Any]]:
    """Evaluate every configuration not yet in ``store`` and return ``{**config, **result}`` rows in input order,
    sharded over several processes as the module says (:func:`process_rank`). A result containing a NaN or infinite
    number is rejected with a ValueError (nothing is stored for it)."""
    rank, world = process_rank()
    stored = [store.get(c) for c in configs]
    mine = [i for i, r in enumerate(stored) if r is None and i % world == rank]
    label = f"{desc} [rank {rank}/{world}]" if world > 1 else desc
    bar = tqdm(total=len(mine), desc=label, disable=not progress or not mine, leave=False)
    _append(PROGRESS_ENV, {"event": "grid", "desc": label, "total": len(configs),
                           "stored": len(configs) - sum(r is None for r in stored), "todo": len(mine)})
    for i in mine:
        start = time.perf_counter()
        result = dict(evaluate(configs[i]))
        if bad := [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]:
            raise ValueError(f"evaluation of {dict(configs[i])} returned non-finite {bad}; nothing stored")
        seconds = time.perf_counter() - start
        store.put(configs[i], result, {"seconds": round(seconds, 3),
                                       "hardware": hardware(str(configs[i].get("device", "cpu"))),
                                       "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        stored[i] = result
        bar.update(1)
        _append(PROGRESS_ENV, {"event": "done", "desc": label, "seconds": seconds})
    bar.close()
    start = time.monotonic()  # the other ranks' shares: read from the store as they come
    while world > 1:
        stored = [store.get(c) if r is None else r for c, r in zip(configs, stored)]
        if (left := sum(r is None for r in stored)) == 0:
            break
        if time.monotonic() - start > (timeout := float(os.environ.get("MAM_SHARD_TIMEOUT", SHARD_TIMEOUT))):
            raise TimeoutError(f"rank {rank} waited {timeout:.0f} s for {left} configuration(s) of the other ranks "
                               f"in {store.root}: did a process die? Launch again; stored results are kept")
        time.sleep(poll_seconds)
    return [{**config, **result} for config, result in zip(configs, stored)]
