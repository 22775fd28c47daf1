import pandas as pd
import pytest

from mamlib.selection.picks import picks, picks_table, scaled_ks, similarity_ranks, table3_block
from mamlib.sweeps.grid import SweepGrid


def _scores():
    # layer:            0     1     2     3
    euclid = [4.0, 1.0, 3.0, 2.0]  # distance: most similar = smallest → ranks 4,1,3,2
    inner = [0.1, 0.9, 0.5, 0.7]  # similarity: most similar = largest → ranks 4,1,3,2
    swd = [2.0, 2.5, 0.5, 1.0]  # distance → ranks 3,4,1,2
    rows = []
    for metric, vals in (("euclidean", euclid), ("inner_product", inner), ("swd", swd)):
        rows += [{"layer": i, "metric": metric, "score": v, "normalization": "none"} for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_ranks_follow_each_metric_direction():
    ranked = similarity_ranks(_scores()).pivot(index="layer", columns="metric", values="rank")
    assert ranked["euclidean"].tolist() == [4, 1, 3, 2]
    assert ranked["inner_product"].tolist() == [4, 1, 3, 2]
    assert ranked["swd"].tolist() == [3, 4, 1, 2]


def test_picks_and_table():
    p = picks(_scores(), [1, 2])
    assert p[("euclidean", 1)] == [1] and p[("euclidean", 2)] == [1, 3]
    assert p[("inner_product", 2)] == [1, 3]
    assert p[("swd", 2)] == [2, 3]
    table = picks_table(p)
    assert table.loc[2, "SWD"] == "2-3" and table.loc[2, "Euclidean"] == "1,3"
    assert list(table.columns) == ["Euclidean", "SWD", "Inner product"]


def test_scaled_ks():
    assert scaled_ks(24) == [4, 6, 8]
    assert scaled_ks(4) == [1, 2, 3]
    with pytest.raises(ValueError):
        scaled_ks(1)


def test_table3_uses_dev_lambda_and_each_pick():
    calls = []

    class FakeSweep:
        value = "wer"

        def run(self, grid: SweepGrid) -> pd.DataFrame:
            calls.append(grid)
            return fake(grid)

    def fake(grid):
        if grid.layer_sets == (None,):  # the all-layer sweep of Chapter 1: dev WER lowest at λ = 0.1
            return pd.DataFrame([
                {"split": "dev", "source": "none", "lambda": 0.0, "layers": "all", "wer": 5.0},
                {"split": "dev", "source": "source", "lambda": 0.05, "layers": "all", "wer": 4.0},
                {"split": "dev", "source": "source", "lambda": 0.1, "layers": "all", "wer": 3.0},
            ])
        rows = [{"split": "test", "source": "source", "lambda": grid.lambdas[0],
                 "layers": "-".join(map(str, (s[0], s[-1]))) if len(s) > 1 else str(s[0]),
                 "wer": 10.0 + sum(s)} for s in grid.layer_sets]
        return pd.DataFrame(rows)

    picked = {("euclidean", 1): [1], ("inner_product", 1): [1], ("swd", 1): [2],
              ("euclidean", 2): [1, 2], ("inner_product", 2): [2, 3], ("swd", 2): [2, 3]}
    table, lam = table3_block(FakeSweep(), picked, [1, 2])
    assert lam == 0.1
    assert calls[1].lambdas == (0.1,) and calls[1].splits == ("test",)
    assert table.loc[(0.1, 1), "SWD"] == 12.0 and table.loc[(0.1, 2), "Inner product"] == 15.0
    assert list(table.columns) == ["Euclidean", "SWD", "Inner product"]


def test_heatmaps_name_metrics_and_normalizations_and_explain_the_colours():
    import matplotlib.pyplot as plt

    from mamlib.report.plots import plot_similarity_heatmaps

    scores = pd.concat([_scores(), _scores().assign(normalization="l2")], ignore_index=True)
    fig = plot_similarity_heatmaps({"lj-like": scores})
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["lj-like, raw", "lj-like, L2-normalized"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["Euclidean", "SWD", "Inner product"]
    (bar,) = [ax for ax in fig.axes if not ax.get_title()]
    assert bar.get_ylabel() == "rank (1 = most similar)"
    plt.close("all")
