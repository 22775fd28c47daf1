"""The book's façade: every name a chapter calls, importable as ``from mamlib.report import …`` (each module loaded
on first use). Behind it: one setup call per chapter (:mod:`~mamlib.report.chapter`), each table's protocol and
layout (:mod:`~mamlib.report.table1`, :mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`,
:mod:`~mamlib.report.table5`, :mod:`~mamlib.report.tables`), the paper's own numbers (:mod:`~mamlib.report.paper`),
figures (:mod:`~mamlib.report.plots`), the front page (:mod:`~mamlib.report.front`), and the error analyses of
:mod:`mamlib.analysis`."""

from mamlib.common.lazy import lazy_exports

#: Name → the module that defines it.
BOOK: dict[str, str] = {
    "open_chapter": "mamlib.report.chapter",
    "corpus_overview": "mamlib.report.chapter",
    "dtype_effect": "mamlib.report.numerics",
    "largest_change": "mamlib.report.numerics",
    "aec_table1": "mamlib.report.table1",
    "asr_table1": "mamlib.report.table1",
    "table1_findings": "mamlib.report.table1",
    "styled": "mamlib.report.tables",
    "aec_table2": "mamlib.report.table2",
    "asr_table2": "mamlib.report.table2",
    "beside_paper": "mamlib.report.table2",
    "table2_blocks": "mamlib.sweeps.choose",
    "paper_table": "mamlib.report.paper",
    "paper_table3": "mamlib.report.paper",
    "PAPER_DATASET_FOR": "mamlib.report.paper",
    "plot_similarity_heatmaps": "mamlib.report.plots",
    "asr_table3": "mamlib.report.table3",
    "layer_picks": "mamlib.report.table3",
    "table3_intervals": "mamlib.report.table3",
    "scaled_ks": "mamlib.selection.picks",
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
}
__all__ = list(BOOK)
__getattr__, __dir__ = lazy_exports(__name__, BOOK)
