"""The book's façade: every name a chapter calls, importable as ``from mamlib.report import …`` (each module loaded
on first use). Behind it: one setup call per chapter (:mod:`~mamlib.report.chapter`), each table's protocol and
layout (:mod:`~mamlib.report.table1`, :mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`,
:mod:`~mamlib.report.table5`, :mod:`~mamlib.report.tables`), what a build evaluates on
(:mod:`~mamlib.report.describe`), the paper's own numbers (:mod:`~mamlib.report.paper`),
figures (:mod:`~mamlib.report.plots`), the front page (:mod:`~mamlib.report.front`), and the error analyses of
:mod:`mamlib.analysis`."""

from mamlib.common.lazy import lazy_exports

#: Each module → the names the book takes from it.
MODULES: dict[str, tuple[str, ...]] = {
    "mamlib.report.chapter": ("open_chapter",),
    "mamlib.report.numerics": ("dtype_effect", "largest_change"),
    "mamlib.report.table1": ("aec_table1", "asr_table1", "table1_findings"),
    "mamlib.report.describe": ("describe_corpora", "describe_aec", "aec_facts", "looping_transcripts", "loop_findings"),
    "mamlib.sweeps.choose": ("relative_change", "table2_blocks"),
    "mamlib.report.tables": ("styled",),
    "mamlib.report.table2": ("aec_table2", "asr_table2", "beside_paper"),
    "mamlib.report.paper": ("paper_table", "paper_table3", "paper_counterpart"),
    "mamlib.report.plots": ("plot_similarity_heatmaps",),
    "mamlib.report.table3": ("asr_table3", "layer_picks", "table3_intervals"),
    "mamlib.selection.picks": ("scaled_ks",),
    "mamlib.selection.signal": ("signal_summary", "signal_table", "signal_findings"),
    "mamlib.report.table5": ("plot_learned_lambdas", "settings_table", "finetune_table5"),
    "mamlib.analysis": (
        "analyse_sweep", "error_findings", "intervals_table", "table6_beside", "edit_counts", "word_changes",
    ),
    "mamlib.report.front": ("front_page",),
    "mamlib.report.compute": ("compute_report", "paper_projection"),
}
#: Name → the module that defines it.
BOOK: dict[str, str] = {name: module for module, names in MODULES.items() for name in names}
__all__ = list(BOOK)
__getattr__, __dir__ = lazy_exports(__name__, BOOK)
