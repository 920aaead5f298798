"""PurgedWalkForward: golden boundaries worked out by hand, purge property, panels, errors.

Golden boundaries are literal timestamps derived on paper from the rules in the splitter's
docstring (blocks of equal duration over [t0, t_last], train_end = test_start - (h + e) bars,
test labels must end by t_last), never computed with the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.evaluation.splits import Fold, PurgedWalkForward

H = pd.Timedelta(hours=1)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def hours(n: int, start="2024-01-01 00:00") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h", tz="UTC", name="timestamp")


def positions(a: int, b: int) -> list[int]:
    """Rows a..b inclusive."""
    return list(range(a, b + 1))


# 601 hourly bars 2024-01-01 00:00 .. 2024-01-26 00:00: span 600 h, 6 blocks of 100 h (4 d 4 h).
# h = 4, e = 8 -> train_end = test_start - 12 h; last fold: labels must end by 01-26 00:00 (row 600).
GOLDEN_601 = [
    # train_start,         train_end,            test_start,           test_end,           train rows, test rows
    ("2024-01-01 00:00", "2024-01-04 16:00", "2024-01-05 04:00", "2024-01-09 08:00", (0, 87), (100, 199)),
    ("2024-01-01 00:00", "2024-01-08 20:00", "2024-01-09 08:00", "2024-01-13 12:00", (0, 187), (200, 299)),
    ("2024-01-01 00:00", "2024-01-13 00:00", "2024-01-13 12:00", "2024-01-17 16:00", (0, 287), (300, 399)),
    ("2024-01-01 00:00", "2024-01-17 04:00", "2024-01-17 16:00", "2024-01-21 20:00", (0, 387), (400, 499)),
    ("2024-01-01 00:00", "2024-01-21 08:00", "2024-01-21 20:00", "2024-01-26 01:00", (0, 487), (500, 596)),
]


def test_golden_600_hourly_bars_5_folds():
    idx = hours(601)
    cv = PurgedWalkForward(5, horizon=4, embargo_bars=8)
    folds = cv.folds(idx)
    splits = list(cv.split(pd.DataFrame({"x": 0.0}, index=idx)))
    assert len(folds) == len(splits) == cv.get_n_splits() == 5
    for k, (fold, (train, test), gold) in enumerate(zip(folds, splits, GOLDEN_601)):
        tr_s, tr_e, te_s, te_e, (a, b), (c, d) = gold
        assert fold == Fold(k, ts(tr_s), ts(tr_e), ts(te_s), ts(te_e))
        assert train.tolist() == positions(a, b)
        assert test.tolist() == positions(c, d)
        assert train.dtype == np.int64 and test.dtype == np.int64
    assert cv.timeline(idx) == (ts("2024-01-01 00:00"), ts("2024-01-26 00:00"))


def test_golden_holdout():
    # holdout 96 h: t_last = 2024-01-22 00:00 (row 504); span 504 h -> 6 blocks of 84 h (3 d 12 h).
    idx = hours(601)
    cv = PurgedWalkForward(5, horizon=4, embargo_bars=8, holdout=pd.Timedelta(hours=96))
    folds = cv.folds(idx)
    assert [(f.train_end, f.test_start, f.test_end) for f in folds] == [
        (ts("2024-01-04 00:00"), ts("2024-01-04 12:00"), ts("2024-01-08 00:00")),
        (ts("2024-01-07 12:00"), ts("2024-01-08 00:00"), ts("2024-01-11 12:00")),
        (ts("2024-01-11 00:00"), ts("2024-01-11 12:00"), ts("2024-01-15 00:00")),
        (ts("2024-01-14 12:00"), ts("2024-01-15 00:00"), ts("2024-01-18 12:00")),
        (ts("2024-01-18 00:00"), ts("2024-01-18 12:00"), ts("2024-01-22 01:00")),
    ]
    splits = list(cv.split(pd.DataFrame({"x": 0.0}, index=idx)))
    assert splits[0][0].tolist() == positions(0, 71) and splits[0][1].tolist() == positions(84, 167)
    train, test = splits[-1]
    assert train.tolist() == positions(0, 407)
    assert test.tolist() == positions(420, 500)           # 501..504: label would reach into the hold-out
    used = np.unique(np.concatenate([np.concatenate(s) for s in splits]))
    assert used.max() == 500                                # rows 505..600 (the hold-out) in no fold


def test_golden_durations_not_divisible():
    # 10 bars 00:00..09:00: span 9 h, 4 blocks of 2 h 15 min, edges floored to whole bars from t0:
    # 02:00, 04:00, 06:00; h = 1, e = 0 so train_end = test_start - 1 h; the last block ends at
    # t_last + bar = 10:00, and row 9 (09:00) is dropped because its label reaches past t_last.
    idx = hours(10, "2024-03-01 00:00")
    cv = PurgedWalkForward(3, horizon=1, embargo_bars=0)
    folds = cv.folds(idx)
    assert [(f.train_end, f.test_start, f.test_end) for f in folds] == [
        (ts("2024-03-01 01:00"), ts("2024-03-01 02:00"), ts("2024-03-01 04:00")),
        (ts("2024-03-01 03:00"), ts("2024-03-01 04:00"), ts("2024-03-01 06:00")),
        (ts("2024-03-01 05:00"), ts("2024-03-01 06:00"), ts("2024-03-01 10:00")),
    ]
    assert [(tr.tolist(), te.tolist()) for tr, te in cv.split(idx)] == [
        ([0], [2, 3]), ([0, 1, 2], [4, 5]), ([0, 1, 2, 3, 4], [6, 7, 8])]


def test_irregular_spacing_splits_by_time_not_rows():
    # rows 0..99: hourly 00:00 .. +99 h; rows 100..110: every 10 h from +100 h to +200 h.
    t0 = ts("2024-01-01 00:00")
    idx = pd.DatetimeIndex(list(t0 + np.arange(100) * H) + list(t0 + np.arange(100, 201, 10) * H))
    cv = PurgedWalkForward(1, horizon=2, embargo_bars=3)
    (fold,) = cv.folds(idx)
    assert fold == Fold(0, ts("2024-01-01 00:00"), ts("2024-01-04 23:00"), ts("2024-01-05 04:00"),
                        ts("2024-01-09 09:00"))
    ((train, test),) = list(cv.split(idx))
    assert train.tolist() == positions(0, 94)              # not half of the 111 rows
    assert test.tolist() == positions(100, 109)            # +100 h .. +190 h; +200 h has no label room


def test_multi_asset_panel_with_repeated_timestamps():
    idx = hours(601)
    rng = np.random.default_rng(0)
    panel = pd.DataFrame({"timestamp": idx.append([idx, idx]), "symbol": np.repeat(["BTC", "ETH", "SOL"], 601)})
    panel = panel.iloc[rng.permutation(len(panel))].reset_index(drop=True)   # rows in any order
    cv = PurgedWalkForward(5, horizon=4, embargo_bars=8)
    for (train, test), gold in zip(cv.split(panel), GOLDEN_601):
        (a, b), (c, d) = gold[4], gold[5]
        for rows, (lo, hi) in ((train, (a, b)), (test, (c, d))):
            got = panel.loc[rows, "timestamp"]
            assert len(rows) == 3 * (hi - lo + 1)                       # every asset, every timestamp
            assert set(got) == set(idx[lo:hi + 1])
            assert np.all(np.diff(rows) > 0)
    # a "timestamp" index level works the same
    indexed = panel.set_index(["timestamp", "symbol"])
    for (tr1, te1), (tr2, te2) in zip(cv.split(panel), cv.split(indexed)):
        assert np.array_equal(tr1, tr2) and np.array_equal(te1, te2)


@pytest.mark.parametrize("seed", range(40))
def test_purge_property_random_irregular_panels(seed):
    rng = np.random.default_rng(seed)
    n_times = int(rng.integers(150, 600))
    steps = rng.choice([1, 1, 1, 2, 3, 7], size=n_times)      # irregular gaps, in hours
    times = ts("2023-06-01 00:00") + pd.to_timedelta(np.cumsum(steps), unit="h")
    reps = rng.integers(1, 4, size=n_times)                     # 1-3 assets per timestamp
    stamps = times.repeat(reps)[rng.permutation(int(reps.sum()))]
    n_folds, h, e = int(rng.integers(1, 7)), int(rng.integers(1, 13)), int(rng.integers(0, 13))
    holdout = pd.Timedelta(hours=int(rng.integers(0, 60)))
    bar = pd.Timedelta(hours=int(rng.choice([1, 2])))
    cv = PurgedWalkForward(n_folds, horizon=h, embargo_bars=e, bar=bar, holdout=holdout)
    try:
        folds = cv.folds(stamps)
    except DataError as err:
        assert "too short" in str(err)
        pytest.skip("random configuration too long for the data")
    # integer nanoseconds keep the checks independent of pandas' datetime arithmetic
    t = stamps.as_unit("ns").asi8
    t_last = t.max() - holdout.value
    hb, eb = (h * bar).value, (e * bar).value
    seen_test = np.zeros(len(t), dtype=bool)
    prev_train = None
    for fold, (train, test) in zip(folds, cv.split(stamps)):
        s, en = fold.test_start.as_unit("ns").value, fold.test_end.as_unit("ns").value
        tr, te = t[train], t[test]
        # purge: no training label window (t, t+h] overlaps [test_start, test_end)
        assert not np.any((tr + hb >= s) & (tr < en))
        # embargo: a further e bars between the last usable label and the test block
        assert np.all(tr + hb + eb < s)
        assert np.all((te >= s) & (te < en))
        assert np.all(te + hb <= t_last)                        # test labels stay out of the hold-out
        assert not np.intersect1d(train, test).size
        assert not np.any(seen_test[test])                      # test blocks never overlap
        seen_test[test] = True
        # completeness: every row allowed by the rules is used
        assert np.array_equal(train, np.flatnonzero(t < fold.train_end.as_unit("ns").value))
        assert np.array_equal(test, np.flatnonzero((t >= s) & (t < en) & (t + hb <= t_last)))
        # rows of one timestamp go the same way
        for rows in (train, test):
            inside = np.isin(t, t[rows])
            assert np.array_equal(np.flatnonzero(inside), rows)
        if prev_train is not None:
            assert np.isin(prev_train, train).all()            # expanding window
        prev_train = train
    holdout_rows = t > t_last
    used = np.unique(np.concatenate([np.concatenate(s) for s in cv.split(stamps)]))
    assert not np.isin(np.flatnonzero(holdout_rows), used).any()


def test_fold_to_dict_round_trip():
    fold = PurgedWalkForward(5).folds(hours(601))[0]
    d = fold.to_dict()
    assert d == {"index": 0, "train_start": "2024-01-01T00:00:00+00:00", "train_end": "2024-01-04T16:00:00+00:00",
                 "test_start": "2024-01-05T04:00:00+00:00", "test_end": "2024-01-09T08:00:00+00:00"}
    assert Fold.from_dict(d) == fold


@pytest.mark.parametrize("kwargs, match", [
    ({"n_folds": 0}, "n_folds=0"),
    ({"horizon": 0}, "horizon=0"),
    ({"embargo_bars": -1}, "embargo_bars=-1"),
    ({"bar": pd.Timedelta(0)}, "bar="),
    ({"holdout": pd.Timedelta(hours=-1)}, "holdout="),
])
def test_config_errors(kwargs, match):
    cv = PurgedWalkForward(**kwargs)                          # __init__ only stores
    with pytest.raises(ConfigError, match=match):
        cv.folds(hours(601))


def test_data_too_short():
    with pytest.raises(DataError, match="fold 0 has no training rows.*too short.*fewer n_folds"):
        PurgedWalkForward(5, horizon=4, embargo_bars=8).folds(hours(40))
    # rows end at +48 h and resume at +150 h; edges fall at +49 h, +99 h, +149 h: fold 0 tests [49 h, 99 h), empty
    t0 = ts("2024-01-01")
    gap = pd.DatetimeIndex(list(t0 + np.arange(49) * H) + list(t0 + np.arange(150, 200) * H))
    with pytest.raises(DataError, match="fold 0 has an empty test block.*too short"):
        PurgedWalkForward(3, horizon=1, embargo_bars=0).folds(gap)
    with pytest.raises(DataError, match="holdout=.*leaves no timeline"):
        PurgedWalkForward(2, holdout=pd.Timedelta(days=30)).folds(hours(601))


def test_bad_timestamps():
    cv = PurgedWalkForward(2)
    with pytest.raises(DataError, match="no timestamps"):
        cv.folds(pd.DatetimeIndex([], tz="UTC"))
    with pytest.raises(DataError, match="must be datetimes"):
        list(cv.split(pd.DataFrame({"timestamp": ["a", "b"]})))
    with pytest.raises(DataError, match="cannot find timestamps"):
        list(cv.split(pd.DataFrame({"x": [1.0, 2.0]})))
    with pytest.raises(DataError, match="NaT"):
        cv.folds(pd.DatetimeIndex([ts("2024-01-01"), pd.NaT]))


def test_sklearn_compatible():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    idx = hours(601)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.standard_normal(601)}, index=idx)
    y = (X["x"] + 0.5 * rng.standard_normal(601) > 0).astype(int)
    cv = PurgedWalkForward(5)
    assert "PurgedWalkForward(" in repr(cv) and "n_folds=5" in repr(cv)
    assert len(cross_val_score(LogisticRegression(), X, y, cv=cv)) == 5
