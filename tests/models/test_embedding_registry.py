"""The CNN's asset embedding is indexed by registry id (sized max id + 1), and unseen ids get the mean of the
trained rows only."""

from __future__ import annotations

import numpy as np
import torch

from _moe_data import panel_rows, window_signal
from fleet.models import PatternExpert

FAST_CNN = dict(epochs=1, lr=1e-2, patience=1, max_train_windows=500, hidden=4, levels=1, window=16, random_state=0)


def _rows_with_ids(ids):
    cols, y = window_signal(300)
    X = panel_rows(300, **cols)
    old = sorted(X["asset_id"].unique())
    X["asset_id"] = X["asset_id"].map(dict(zip(old, ids[: len(old)])))
    return X, y


def test_embedding_rows_are_registry_ids():
    X, y = _rows_with_ids([2, 5, 9, 11])
    ids = sorted(X["asset_id"].unique())
    m = PatternExpert(**FAST_CNN).fit(X, y)
    assert m.module_.asset_embedding.num_embeddings == max(ids) + 1 == m.num_assets_
    assert m.asset_codes_ == {i: i for i in ids}
    # Sized from a registry larger than the unit: the same rows, more of them.
    big = PatternExpert(**FAST_CNN, num_assets=40).fit(X, y)
    assert big.module_.asset_embedding.num_embeddings == 40


def test_unseen_id_gets_the_mean_of_trained_rows_only():
    X, y = _rows_with_ids([2, 5, 9, 11])
    ids = sorted(X["asset_id"].unique())
    m = PatternExpert(**FAST_CNN, num_assets=30).fit(X, y)
    net = m.module_
    x = torch.zeros(1, len(m.features_), m.window)
    unseen = net.embed(x, torch.tensor([-1]))[0, len(m.features_):, 0]
    expected = net.asset_embedding.weight[ids].mean(dim=0)  # independent: the trained rows by index
    assert torch.allclose(unseen, expected)
    assert not torch.allclose(unseen, net.asset_embedding.weight.mean(dim=0))  # untrained rows left out
    new = X[X["asset_id"] == ids[0]].copy()
    new["asset_id"] = 20  # inside the table but never trained: treated as unknown
    assert np.array_equal(m._codes(new), np.full(len(new), -1))
    assert np.isfinite(m.predict_proba(new)).all()
