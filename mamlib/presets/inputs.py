"""Failing fast when a preset's datasets or checkpoints are missing, before any model is built."""

from __future__ import annotations

from pathlib import Path

from mamlib.common.paths import resolve_path
from mamlib.presets.schema import Preset

#: Where each dataset or checkpoint that a preset may point at comes from (for "missing input" messages).
SOURCES = {
    "ljspeech": "LJ Speech 1.1 — https://keithito.com/LJ-Speech-Dataset/",
    "vctk": "VCTK 0.92 — https://datashare.ed.ac.uk/handle/10283/3443",
    "esc50": "ESC-50 — https://github.com/karolpiczak/ESC-50 (or the parquet copy ashraq/esc50)",
    "beats-checkpoint": "BEATs iter3+ AS2M — https://github.com/microsoft/unilm/tree/master/beats",
}


def check_inputs(preset: Preset) -> None:
    """One FileNotFoundError listing every missing dataset folder or checkpoint of ``preset``, the setting or
    environment variable that names it, and where to get it."""
    missing = []

    def need(what: str, path: str | None, setting: str) -> None:
        if not path or not Path(path).exists():
            where = f" (now {path!r}, which does not exist)" if path else ""
            missing.append(f"- {SOURCES[what]}: set {setting}{where}")

    for label, spec in preset.asr.corpora.items():
        if spec.dataset in ("ljspeech", "vctk"):
            need(spec.dataset, spec.resolved_path(), spec.path_env or f"asr.corpora.{label}.path")
    if preset.aec is not None:
        if preset.aec.data.dataset == "esc50":
            need("esc50", preset.aec.data.resolved_path(), preset.aec.data.path_env or "aec.data.path")
        target = preset.aec.target
        if target.kind == "beats-checkpoint":
            env = target.options.get("path_env")
            need("beats-checkpoint", resolve_path(target.options.get("path"), env), env or "aec.target.options.path")
    if missing:
        raise FileNotFoundError(f"preset {preset.name!r} needs inputs that are not on this machine:\n"
                                + "\n".join(missing))
