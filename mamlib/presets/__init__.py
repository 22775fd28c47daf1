"""Presets — ``smoke``, ``mini``, ``paper`` as YAML beside this file — parsed strictly into typed setups
(:mod:`~mamlib.presets.schema`), with a fail-fast check of the datasets and checkpoints they need
(:mod:`~mamlib.presets.inputs`)."""
