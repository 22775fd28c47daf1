"""A results store keyed by the exact configuration that produced each result, and a resumable grid runner.

Each result is one JSON file named by the hash of its configuration, written atomically (temporary file, then
``os.replace``). An interrupted sweep therefore resumes where it stopped: finished configurations are read back,
never recomputed or duplicated, and a half-written file never becomes visible. Re-rendering the book reuses the
store; a change of configuration (or of mamlib's version, which every key includes) computes afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mamlib import __version__


def config_key(config: Mapping[str, Any]) -> str:
    """A stable hash of ``config`` (canonical JSON: sorted keys, no whitespace) plus mamlib's version."""
    payload = json.dumps({"config": config, "mamlib": __version__}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


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
        next :meth:`put` then replaces."""
        path = self._path(config)
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
            return None
        return record["result"] if record.get("config") == json.loads(json.dumps(config)) else None

    def put(self, config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Store ``result`` for ``config`` atomically."""
        path = self._path(config)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"config": config, "result": result}))
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*.json"))


def run_grid(
    configs: Sequence[Mapping[str, Any]],
    evaluate: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    store: ResultStore,
    *,
    desc: str = "sweep",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate every configuration not yet in ``store`` and return ``{**config, **result}`` rows in input order.

    A result containing a NaN or infinite number is rejected with a ValueError (nothing is stored for it).
    """
    rows = []
    stored = [store.get(c) for c in configs]
    todo = sum(r is None for r in stored)
    bar = tqdm(total=todo, desc=desc, disable=not progress or not todo, leave=False)
    for config, result in zip(configs, stored):
        if result is None:
            result = dict(evaluate(config))
            bad = [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                raise ValueError(f"evaluation of {dict(config)} returned non-finite {bad}; nothing stored")
            store.put(config, result)
            bar.update(1)
        rows.append({**config, **result})
    bar.close()
    return rows
