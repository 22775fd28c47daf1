"""Failing fast when a preset's datasets or checkpoints are missing, before any model is built."""

from __future__ import annotations

from pathlib import Path

from mamlib.common.paths import resolve_path
from mamlib.models.beats import RELEASES
from mamlib.presets.schema import Preset, find_dataset


def check_inputs(preset: Preset) -> None:
    """One FileNotFoundError listing every missing dataset folder or checkpoint of ``preset``, the setting or
    environment variable that names it, and where to get it."""
    missing = []

    def need(source: str, path: str | None, setting: str) -> None:
        if not path or not Path(path).exists():
            where = f" (now {path!r}, which does not exist)" if path else ""
            missing.append(f"- {source}: set {setting}{where}")

    aec = {} if preset.aec is None else {"aec.data": preset.aec.data}
    for where, spec in {**{f"asr.corpora.{k}": c for k, c in preset.asr.corpora.items()}, **aec}.items():
        if (entry := find_dataset(spec.dataset)).path_env is not None:
            need(entry.source, spec.resolved_path(), spec.path_env or f"{where}.path")
    if preset.aec is not None and preset.aec.target.kind == "beats-checkpoint":
        options = preset.aec.target.options
        env = options.get("path_env")
        need(f"BEATs iter3+ AS2M — {RELEASES}", resolve_path(options.get("path"), env),
             env or "aec.target.options.path")
    if missing:
        raise FileNotFoundError(f"preset {preset.name!r} needs inputs that are not on this machine:\n"
                                + "\n".join(missing))
