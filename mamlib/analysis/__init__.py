"""Analyses of stored results (Sec. 4.3 and the comparisons of Tables 1–3, 5): paired bootstrap intervals, Table 4's
transcript changes, Table 6's error types, WER per speaker. Built from sweep rows; no model runs here."""

from mamlib.analysis.bootstrap import (
    PairedInterval,
    compare_rows,
    compare_to_unmerged,
    detectable_difference,
    edit_counts,
    intervals_table,
    item_errors,
    items_needed,
    paired_bootstrap,
    select_row,
    single_system_resolution,
    word_errors,
)
from mamlib.analysis.errors import (
    ImprovementSplit,
    TranscriptChanges,
    WordChange,
    improvement_split,
    improvement_table,
    speaker_wer,
    table6_beside,
    transcript_changes,
    word_changes,
)
from mamlib.analysis.summary import PairAnalysis, analyse_sweep, error_findings

__all__ = [
    "ImprovementSplit", "PairAnalysis", "PairedInterval", "TranscriptChanges", "WordChange", "analyse_sweep",
    "compare_rows", "compare_to_unmerged", "detectable_difference", "edit_counts", "error_findings",
    "improvement_split", "improvement_table", "intervals_table", "item_errors", "items_needed", "paired_bootstrap",
    "select_row", "single_system_resolution", "speaker_wer", "table6_beside", "transcript_changes", "word_changes",
    "word_errors",
]
