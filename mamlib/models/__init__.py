"""Models: the specs a preset names (:mod:`~mamlib.models.kinds`, no model classes imported), building them
(:mod:`~mamlib.models.build`), and the weights behind them — BEATs (:mod:`~mamlib.models.beats`), the mini preset's
packaged weights (:mod:`~mamlib.models.packaged`, :mod:`~mamlib.models.ct2`, :mod:`~mamlib.models.pretrained`)."""
