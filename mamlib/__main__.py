"""``python -m mamlib merge|fetch ...`` — the same as the ``mam`` console script (:mod:`mamlib.cli`)."""

from mamlib.cli import main

raise SystemExit(main())
