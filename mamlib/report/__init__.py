"""The book's side of mamlib: one setup call per chapter (:mod:`~mamlib.report.chapter`), each table's protocol and
layout (:mod:`~mamlib.report.table1`, :mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`,
:mod:`~mamlib.report.tables`), the paper's own numbers (:mod:`~mamlib.report.paper`) and figures
(:mod:`~mamlib.report.plots`)."""
