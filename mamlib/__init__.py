"""mamlib: the library behind the executable book reproducing Multimodal Attention Merging (MAM).

The package tree follows the method, each subpackage depending only on those listed before it:

- :mod:`mamlib.common` — audio I/O, paths and the cache directory, tensor helpers;
- :mod:`mamlib.merge` — Eq. 1–3, model families, the reversible merger, noise baselines, source variants;
- :mod:`mamlib.models` — model specs and building, BEATs, the mini preset's packaged weights;
- :mod:`mamlib.asr`, :mod:`mamlib.aec` — the two tasks: recognizers, WER and corpora; encoders, clips, linear head;
- :mod:`mamlib.presets` — the strict ``smoke`` / ``mini`` / ``paper`` configurations;
- :mod:`mamlib.sweeps` — the results store, the grid engine, dev/test selection, the ASR and AEC rigs;
- :mod:`mamlib.selection` — choosing layers from data (Table 3);
- :mod:`mamlib.report` — the chapters' setup, tables beside the paper's, figures.

The names a user's own script needs are importable from the top: ``from mamlib import AttentionMerger, interpolate``.
"""

from __future__ import annotations

from mamlib.common.lazy import lazy_exports

#: Part of every results-store key: bump it whenever a change alters computed results (e.g. the WER normalization).
__version__ = "0.5.0"

#: Public name → the module that defines it (imported on first use, so ``import mamlib`` stays light).
_PUBLIC: dict[str, str] = {
    "interpolate": "mamlib.merge.interpolation",
    "layer_lambdas": "mamlib.merge.schedule",
    "convex_combination": "mamlib.merge.interpolation",
    "AttentionMerger": "mamlib.merge.merger",
    "AttentionWeights": "mamlib.merge.merger",
    "MultiSourceMerger": "mamlib.merge.merger",
    "evenly_spaced_layer_map": "mamlib.merge.schedule",
    "AttentionFamily": "mamlib.merge.families",
    "register_family": "mamlib.merge.families",
    "detect_family": "mamlib.merge.families",
    "noise_weights": "mamlib.merge.noise",
    "SourceVariant": "mamlib.merge.sources",
    "register_source_variant": "mamlib.merge.sources",
    "build_mergers": "mamlib.merge.sources",
    "ModelSpec": "mamlib.models.kinds",
    "build_model": "mamlib.models.build",
    "load_preset": "mamlib.presets.schema",
    "word_error_rate": "mamlib.asr.metrics",
    "normalize_transcript": "mamlib.asr.metrics",
    "make_transcriber": "mamlib.asr.transcribe",
    "load_corpus": "mamlib.asr.corpora",
    "match_norm": "mamlib.merge.interpolation",
    "LoadedModel": "mamlib.models.base",
    "cache_root": "mamlib.common.paths",
    "ResultStore": "mamlib.sweeps.store",
    "SweepGrid": "mamlib.sweeps.grid",
    "open_chapter": "mamlib.report.chapter",
}

__all__ = ["__version__", *_PUBLIC]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
