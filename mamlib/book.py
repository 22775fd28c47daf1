"""Small helpers the chapters share: where the cache lives, preset summaries, loading a preset's corpora, plots."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mamlib.asr import Utterance
from mamlib.config import CorpusSpec, Preset

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$MAM_CACHE_DIR``, else ``<repo>/_cache``."""
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("MAM_CACHE_DIR", REPO_ROOT / "_cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def preset_summary(preset: Preset) -> pd.DataFrame:
    """A one-column table describing the preset's ASR setup, for the top of a chapter."""
    a = preset.asr
    rows = {
        "preset": preset.name,
        "target (speech)": f"{a.target.kind} {a.target.name}".strip(),
        "source (text)": f"{a.source.kind} {a.source.name}".strip(),
        "corpora": ", ".join(f"{c.label} ({c.kind})" for c in a.corpora.values()),
        "λ grid": ", ".join(f"{x:.2f}" for x in a.lambdas),
        "noise moments": f"per {a.noise_pooling}, seed {a.noise_seed}",
        "layer map": "identity, or evenly spaced when depths differ" if a.layer_map is None else str(list(a.layer_map)),
        "device": preset.device,
    }
    if preset.aec is not None:
        e = preset.aec
        rows.update({
            "AEC target (audio)": f"{e.target.kind} {e.target.name}".strip(),
            "AEC source (image)": f"{e.source.kind} {e.source.name}".strip(),
            "AEC clips": f"{e.data.label} ({e.data.kind}); folds {list(e.train_folds)} / {e.dev_fold} / {e.test_fold}",
            "AEC λ grid": ", ".join(f"{x:.2f}" for x in e.lambdas),
        })
    return pd.DataFrame({"value": rows})


def load_corpora(corpora: Mapping[str, CorpusSpec], cache_dir: Path) -> dict[str, dict[str, list[Utterance]]]:
    """Every corpus of a preset, by label and split, through :func:`mamlib.corpora.load_corpus`."""
    from mamlib.corpora import load_corpus

    out: dict[str, dict[str, list[Utterance]]] = {}
    for label, spec in corpora.items():
        out[label] = {}
        for split in spec.splits:
            n = spec.n_dev if split == "dev" else spec.n_test
            out[label][split] = load_corpus(spec.kind, split, cache_dir=cache_dir, path=spec.resolved_path(), n=n,
                                            **spec.options)
    return out


def corpus_overview(corpora: Mapping[str, Mapping[str, Sequence[Utterance]]]) -> pd.DataFrame:
    """Utterance counts, words and minutes of audio per corpus and split."""
    rows = []
    for label, splits in corpora.items():
        for split, utts in splits.items():
            rows.append({"corpus": label, "split": split, "utterances": len(utts),
                         "speakers": len({u.speaker for u in utts}),
                         "words": sum(len(u.text.split()) for u in utts),
                         "minutes": round(sum(u.seconds for u in utts) / 60, 2)})
    return pd.DataFrame(rows).set_index(["corpus", "split"])


def plot_lambda_sweep(ours: pd.DataFrame, paper: pd.DataFrame | None, title: str, ylabel: str = "WER (%)"):
    """Error vs λ per source kind: ours on the left, the paper's on the right (separate axes: different scales)."""
    sns.set_theme(style="whitegrid")
    ncols = 2 if paper is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.6), squeeze=False)
    for ax, (label, table) in zip(axes[0], [("ours", ours), ("paper", paper)][:ncols]):
        long = table.reset_index().melt(id_vars="λ", var_name="source", value_name="error").dropna()
        sns.lineplot(data=long, x="λ", y="error", hue="source", style="source", markers=True, dashes=False, ax=ax)
        ax.set_title(f"{title}: {label}")
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def styled(table: pd.DataFrame, caption: str, digits: int = 2):
    """A table as the book shows it: numbers to ``digits`` decimals, missing cells as "–", a caption."""
    fmt = f"{{:.{digits}f}}"
    style = table.style.format(fmt, na_rep="–").set_caption(caption)
    for level in range(table.index.nlevels):
        if pd.api.types.is_float_dtype(table.index.get_level_values(level)):
            style = style.format_index(fmt, axis=0, level=level)
    return style


#: Where each dataset or checkpoint that a preset may point at comes from (for "missing input" messages).
SOURCES = {
    "ljspeech": "LJ Speech 1.1 — https://keithito.com/LJ-Speech-Dataset/",
    "vctk": "VCTK 0.92 — https://datashare.ed.ac.uk/handle/10283/3443",
    "esc50": "ESC-50 — https://github.com/karolpiczak/ESC-50 (or the parquet copy ashraq/esc50)",
    "beats-checkpoint": "BEATs iter3+ AS2M — https://github.com/microsoft/unilm/tree/master/beats",
}


def check_inputs(preset: Preset) -> None:
    """Fail fast, before any model is built, when a dataset folder or checkpoint the preset needs is missing.

    One FileNotFoundError lists every missing input, the setting or environment variable that names it, and where
    to get it.
    """
    missing = []

    def need(kind: str, path: str | None, setting: str) -> None:
        if not path or not Path(path).exists():
            where = f" (now {path!r}, which does not exist)" if path else ""
            missing.append(f"- {SOURCES[kind]}: set {setting}{where}")

    for label, spec in preset.asr.corpora.items():
        if spec.kind in ("ljspeech", "vctk"):
            need(spec.kind, spec.resolved_path(), spec.path_env or f"asr.corpora.{label}.path")
    if preset.aec is not None:
        if preset.aec.data.kind == "esc50":
            need("esc50", preset.aec.data.resolved_path(), preset.aec.data.path_env or "aec.data.path")
        target = preset.aec.target
        if target.kind == "beats-checkpoint":
            env = target.options.get("path_env")
            need("beats-checkpoint", target.options.get("path") or (os.environ.get(env) if env else None),
                 env or "aec.target.options.path")
    if missing:
        raise FileNotFoundError(f"preset {preset.name!r} needs inputs that are not on this machine:\n"
                                + "\n".join(missing))
