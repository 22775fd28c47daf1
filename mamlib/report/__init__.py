"""The book's façade: every name a chapter calls, importable as ``from mamlib.report import …`` (each module loaded
on first use). Behind it: one setup call per chapter (:mod:`~mamlib.report.chapter`), each table's protocol and
layout (:mod:`~mamlib.report.table1`, :mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`,
:mod:`~mamlib.report.table5`, :mod:`~mamlib.report.tables`), what a build evaluates on
(:mod:`~mamlib.report.describe`), the paper's own numbers (:mod:`~mamlib.report.paper`),
figures (:mod:`~mamlib.report.plots`), the front page (:mod:`~mamlib.report.front`), and the error analyses of
:mod:`mamlib.analysis`."""

from mamlib.common.lazy import lazy_exports

#: Name → the module that defines it.
BOOK: dict[str, str] = {
    "open_chapter": "mamlib.report.chapter",
    "dtype_effect": "mamlib.report.numerics",
    "largest_change": "mamlib.report.numerics",
    "aec_table1": "mamlib.report.table1",
    "asr_table1": "mamlib.report.table1",
    "table1_findings": "mamlib.report.table1",
    "describe_corpora": "mamlib.report.describe",
    "describe_aec": "mamlib.report.describe",
    "aec_facts": "mamlib.report.describe",
    "looping_transcripts": "mamlib.report.describe",
    "loop_findings": "mamlib.report.describe",
    "relative_change": "mamlib.sweeps.choose",
    "styled": "mamlib.report.tables",
    "aec_table2": "mamlib.report.table2",
    "asr_table2": "mamlib.report.table2",
    "beside_paper": "mamlib.report.table2",
    "table2_blocks": "mamlib.sweeps.choose",
    "paper_table": "mamlib.report.paper",
    "paper_table3": "mamlib.report.paper",
    "PAPER_DATASET_FOR": "mamlib.report.paper",
    "paper_counterpart": "mamlib.report.paper",
    "plot_similarity_heatmaps": "mamlib.report.plots",
    "asr_table3": "mamlib.report.table3",
    "layer_picks": "mamlib.report.table3",
    "table3_intervals": "mamlib.report.table3",
    "scaled_ks": "mamlib.selection.picks",
    "signal_summary": "mamlib.selection.signal",
    "signal_table": "mamlib.selection.signal",
    "signal_findings": "mamlib.selection.signal",
    "plot_learned_lambdas": "mamlib.report.table5",
    "settings_table": "mamlib.report.table5",
    "finetune_table5": "mamlib.report.table5",
    "analyse_sweep": "mamlib.analysis",
    "error_findings": "mamlib.analysis",
    "intervals_table": "mamlib.analysis",
    "table6_beside": "mamlib.analysis",
    "edit_counts": "mamlib.analysis",
    "word_changes": "mamlib.analysis",
    "front_page": "mamlib.report.front",
    "compute_report": "mamlib.report.compute",
    "paper_projection": "mamlib.report.compute",
}
__all__ = list(BOOK)
__getattr__, __dir__ = lazy_exports(__name__, BOOK)
