"""A re-render whose results are all stored builds no network: Tables 2, 3 and 5 on the smoke preset, twice."""

import pandas as pd
import pytest

from mamlib.report import asr_table2, finetune_table5, layer_picks, open_chapter

NETWORKS = {"loaded", "transcriber", "mergers", "encoder"}


def _tables(ch):
    return asr_table2(ch).ours, layer_picks(ch).table(), finetune_table5(ch, progress=False).layout("smoke")


def test_second_render_reads_everything_and_builds_no_model(tmp_path):
    first = open_chapter("smoke", tmp_path, variants=["source"])
    before = _tables(first)
    assert NETWORKS & set(vars(first.asr_rig))  # the first render did build the target
    again = open_chapter("smoke", tmp_path, variants=["source"])
    after = _tables(again)
    for a, b in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b)
    built = {name: NETWORKS & set(vars(rig)) for name, rig in vars(again).items() if name.endswith("_rig")}
    assert built and not any(built.values()), built
    with pytest.raises(ValueError, match="task must be 'asr' or 'aec'"):
        again.depth("asr-ctc")
