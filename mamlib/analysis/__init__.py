"""Analyses of stored results (Sec. 4.3 and the comparisons of Tables 1–3, 5): paired bootstrap intervals, Table 4's
transcript changes, Table 6's error types, WER per speaker. Built from sweep rows; no model runs here."""

from mamlib.common.lazy import lazy_exports

_MODULES: dict[str, tuple[str, ...]] = {
    "bootstrap": ("PairedInterval", "compare_rows", "compare_to_unmerged", "detectable_difference", "edit_counts",
                  "intervals_table", "item_errors", "items_needed", "paired_bootstrap", "select_row",
                  "single_system_resolution", "word_errors"),
    "errors": ("ImprovementSplit", "TranscriptChanges", "WordChange", "improvement_split", "improvement_table",
               "speaker_wer", "table6_beside", "transcript_changes", "word_changes"),
    "summary": ("PairAnalysis", "analyse_sweep", "error_findings"),
}
#: Name → the module that defines it (imported on first use).
_PUBLIC: dict[str, str] = {name: f"mamlib.analysis.{module}" for module, names in _MODULES.items() for name in names}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
