"""Group assets by their return correlation and pick the dominant ("market") cluster.

Pipeline: pairwise correlation -> distance 1 - |corr| -> Ward hierarchical clustering
(Ward 1963) -> canonical cluster ids with the dominant cluster as 0. Structure follows
skfolio's ``cluster/_hierarchical.py`` (a distance matrix in, ``linkage_matrix_`` and
``labels_`` out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator

from fleet.errors import ConfigError, DataError

__all__ = ["ClusterResult", "WardClusterer", "cluster_assets", "correlation_distance", "merge_small_clusters"]


def correlation_distance(returns: pd.DataFrame, *, min_periods: int = 2,
                         signed: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise-complete Pearson correlation of returns and the distance ``1 - |corr|``.

    Each pair uses the rows where both assets have a value (pairwise-complete, as
    ``DataFrame.corr``), so assets with different histories still compare on their overlap.
    ``1 - |corr|`` treats strong negative correlation as similarity; it lies in
    [0, 1], is 0 on the diagonal and symmetric.

    Args:
        returns: (n_timestamps, n_assets) log returns, e.g. from ``align_log_returns``; NaN allowed.
        min_periods: fewest overlapping rows a pair needs (>= 2).
        signed: use ``(1 - corr) / 2`` instead (0 for corr = 1, 1 for corr = -1): for residual returns,
            where removing a common factor makes the groups *negatively* correlated with one another, so
            ``1 - |corr|`` would call opposite groups similar.

    Returns:
        ``(correlation, distance)``: two (n_assets, n_assets) float64 DataFrames indexed and
        columned by the symbols in the order of ``returns.columns``.

    Raises:
        DataError: no columns, duplicate column names, or a pair whose correlation is undefined
            (fewer than ``min_periods`` common rows, or a constant return series), naming the pairs.
    """
    if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
        raise DataError("correlation_distance: expected a DataFrame of returns with one column per asset")
    if returns.columns.has_duplicates:
        dup = sorted(set(returns.columns[returns.columns.duplicated()]))
        raise DataError(f"correlation_distance: duplicate asset columns {dup}")
    values = returns.astype(np.float64)
    x = values.to_numpy()
    x = x[~np.isnan(x).all(axis=1)]  # a row no asset has (the first return of an aligned grid) is in no pair
    if len(x) >= max(int(min_periods), 2) and not np.isnan(x).any():
        # No other gap: every pair's overlap is every row, so np.corrcoef (one BLAS matrix product) gives what
        # DataFrame.corr's pair-by-pair loop gives, to rounding; that loop dominates a large fleet's market
        # fit. A constant column gives NaN, refused below.
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.atleast_2d(np.corrcoef(x, rowvar=False))
    else:
        c = values.corr(method="pearson", min_periods=max(int(min_periods), 2)).to_numpy(copy=True)
    np.fill_diagonal(c, 1.0)
    bad = np.argwhere(np.isnan(np.triu(c, 1)) & np.triu(np.ones_like(c, dtype=bool), 1))
    if len(bad):
        names = [f"{returns.columns[i]}/{returns.columns[j]}" for i, j in bad[:5]]
        more = "" if len(bad) <= 5 else f" and {len(bad) - 5} more"
        raise DataError(f"correlation_distance: correlation undefined for {', '.join(names)}{more}: each pair "
                        f"needs at least {max(int(min_periods), 2)} common rows of non-constant returns")
    c = np.clip((c + c.T) / 2.0, -1.0, 1.0)
    d = (1.0 - c) / 2.0 if signed else 1.0 - np.abs(c)
    np.fill_diagonal(d, 0.0)
    cols = list(returns.columns)
    return (pd.DataFrame(c, index=cols, columns=cols), pd.DataFrame(d, index=cols, columns=cols))


class WardClusterer(BaseEstimator):
    """Ward hierarchical clustering of assets from a precomputed distance matrix.

    Ward, J. H. (1963), "Hierarchical grouping to optimize an objective function", JASA 58(301):
    236-244: each merge is the one that least increases the within-cluster sum of squares.
    Computed with ``scipy.cluster.hierarchy.linkage(squareform(distance), method="ward")``; the
    tree is cut with ``fcluster`` into at most ``n_clusters`` clusters (criterion "maxclust") or
    at height ``distance_threshold`` (criterion "distance"). Exactly one of the two must be set.
    Ward's update formula assumes Euclidean distances; on ``1 - |corr|`` it is the usual
    heuristic and gives compact groups of co-moving assets.

    Args:
        n_clusters: number of clusters (>= 1, <= n_assets), or None to cut by distance.
        distance_threshold: dendrogram height to cut at (>= 0), or None to cut by count.

    Attributes (after ``fit``):
        linkage_matrix_: (n_assets - 1, 4) ndarray, scipy linkage format; (0, 4) for one asset.
        labels_: pd.Series symbol -> raw cluster label 0..K-1 (int64), named "cluster".
        n_clusters_: K, the number of clusters found.
    """

    def __init__(self, n_clusters: int | None = 3, distance_threshold: float | None = None):
        self.n_clusters = n_clusters
        self.distance_threshold = distance_threshold

    def _check_params(self, n_assets: int) -> None:
        if (self.n_clusters is None) == (self.distance_threshold is None):
            raise ConfigError(f"n_clusters={self.n_clusters!r}, distance_threshold={self.distance_threshold!r}: "
                              "set exactly one of them (the other to None)")
        if self.n_clusters is not None:
            k = self.n_clusters
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ConfigError(f"n_clusters={k!r}: expected an integer >= 1")
            if k > n_assets:
                raise ConfigError(f"n_clusters={k}: more clusters than the {n_assets} assets to cluster; "
                                  f"use n_clusters <= {n_assets}")
        else:
            t = self.distance_threshold
            if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not np.isfinite(t) or t < 0:
                raise ConfigError(f"distance_threshold={t!r}: expected a finite number >= 0")

    def fit(self, distance: pd.DataFrame, y=None) -> "WardClusterer":
        """Build the Ward tree and cut it.

        Args:
            distance: (n_assets, n_assets) symmetric DataFrame, zero diagonal, finite values >= 0,
                index equal to columns (symbols), e.g. the second output of ``correlation_distance``.
            y: ignored (scikit-learn API).

        Returns:
            self.

        Raises:
            ConfigError: both or neither of n_clusters / distance_threshold set; n_clusters < 1 or
                > n_assets; distance_threshold < 0.
            DataError: distance not square / not labelled alike / not symmetric / negative or
                non-finite entries / non-zero diagonal / empty.
        """
        if not isinstance(distance, pd.DataFrame) or distance.shape[0] == 0:
            raise DataError("WardClusterer.fit: expected a non-empty (n_assets, n_assets) distance DataFrame")
        if distance.shape[0] != distance.shape[1] or not distance.index.equals(distance.columns):
            raise DataError(f"WardClusterer.fit: distance must be square with index equal to columns; "
                            f"got shape {distance.shape}")
        d = distance.to_numpy(dtype=np.float64)
        if not np.isfinite(d).all() or (d < 0).any():
            raise DataError("WardClusterer.fit: distance entries must be finite and >= 0")
        if not np.allclose(d, d.T, atol=1e-10) or not np.allclose(np.diag(d), 0.0, atol=1e-12):
            raise DataError("WardClusterer.fit: distance must be symmetric with a zero diagonal")
        n = d.shape[0]
        self._check_params(n)
        symbols = list(distance.index)
        if n == 1:
            self.linkage_matrix_ = np.empty((0, 4))
            raw = np.zeros(1, dtype=np.int64)
        else:
            d = (d + d.T) / 2.0
            np.fill_diagonal(d, 0.0)
            self.linkage_matrix_ = linkage(squareform(d, checks=False), method="ward")
            if self.n_clusters is not None:
                raw = fcluster(self.linkage_matrix_, t=int(self.n_clusters), criterion="maxclust")
            else:
                raw = fcluster(self.linkage_matrix_, t=float(self.distance_threshold), criterion="distance")
            # fcluster numbers from 1; make the labels 0..K-1 whatever its numbering.
            raw = np.unique(raw, return_inverse=True)[1].astype(np.int64)
        self.labels_ = pd.Series(raw, index=pd.Index(symbols, name="symbol"), name="cluster")
        self.n_clusters_ = int(raw.max()) + 1
        return self


class CorrelationRows(Mapping):
    """A square correlation frame as the read-only mapping ``{str(row): {str(column): float}}`` whose rows are
    made when they are read (see :meth:`ClusterResult.to_dict`).

    Args:
        frame: (n_assets, n_assets) correlation, index and columns the symbols.
    """

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self._rows = {str(r): i for i, r in enumerate(frame.index)}

    def __getitem__(self, key: str) -> "CorrelationRow":
        return CorrelationRow(self._frame, self._rows[key])

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def items(self):
        """(symbol, its row) pairs, the rows not yet made."""
        return ((key, CorrelationRow(self._frame, i)) for key, i in self._rows.items())


class CorrelationRow(Mapping):
    """Row ``i`` of a correlation frame as ``{str(column): float}``; :meth:`items` makes it in one pass."""

    def __init__(self, frame: pd.DataFrame, i: int):
        self._frame, self._i = frame, i

    def items(self):
        values = self._frame.iloc[self._i].to_numpy(dtype=np.float64).tolist()
        return zip(map(str, self._frame.columns), values)

    def __getitem__(self, key: str) -> float:
        columns = list(map(str, self._frame.columns))
        if key not in columns:
            raise KeyError(key)
        return float(self._frame.iat[self._i, columns.index(key)])

    def __iter__(self):
        return map(str, self._frame.columns)

    def __len__(self) -> int:
        return self._frame.shape[1]


@dataclass(frozen=True)
class ClusterResult:
    """Asset clusters with canonical ids.

    Attributes:
        cluster_map: symbol -> cluster id. Ids are canonical: 0 is the dominant cluster, the
            others are numbered 1.. in the order of their alphabetically first member.
        dominant_cluster: always 0 after relabelling.
        members: cluster id -> sorted symbols.
        linkage: (n_assets - 1, 4) scipy linkage matrix of the Ward tree ((0, 4) for < 2 assets);
            leaf i is the i-th column of ``correlation``.
        correlation: (n_assets, n_assets) Pearson correlation of the returns clustered.
        dominant_reason: why cluster 0 was chosen, e.g. "holds BTCUSDT".
    """

    cluster_map: dict[str, int]
    dominant_cluster: int
    members: dict[int, list[str]]
    # Arrays are left out of ==: equal clusterings compare equal, and ndarray == is elementwise.
    linkage: np.ndarray = field(repr=False, compare=False)
    correlation: pd.DataFrame = field(repr=False, compare=False)
    dominant_reason: str = ""

    @property
    def n_clusters(self) -> int:
        return len(self.members)

    def to_dict(self, lazy_correlation: bool = False) -> dict:
        """JSON-ready dict: plain lists / floats / str keys (``json.loads(json.dumps(d)) == d``).

        Keys: cluster_map, dominant_cluster, members (str id -> symbols), linkage (list of
        4-float rows), correlation (nested {symbol: {symbol: float}}), dominant_reason.

        ``lazy_correlation``: the correlation as a :class:`CorrelationRows` mapping, whose rows are made one at a
        time when read, for a writer that turns mappings into dicts as it goes
        (:meth:`fleet.store.layout.RunLayout.write_json`): n² Python floats (about 100 MiB at 1,000 assets) are
        never held at once. Same JSON.
        """
        corr = (CorrelationRows(self.correlation) if lazy_correlation else
                {str(r): {str(c): float(v) for c, v in row.items()} for r, row in self.correlation.iterrows()})
        return {
            "cluster_map": {str(s): int(c) for s, c in self.cluster_map.items()},
            "dominant_cluster": int(self.dominant_cluster),
            "members": {str(k): [str(s) for s in v] for k, v in self.members.items()},
            "linkage": [[float(x) for x in row] for row in np.asarray(self.linkage)],
            "correlation": corr,
            "dominant_reason": self.dominant_reason,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterResult":
        """Inverse of ``to_dict`` (e.g. to read a run directory back). Raises DataError on missing keys."""
        try:
            corr = pd.DataFrame(d["correlation"]).T
            symbols = list(d["correlation"])
            return cls(
                cluster_map={str(s): int(c) for s, c in d["cluster_map"].items()},
                dominant_cluster=int(d["dominant_cluster"]),
                members={int(k): list(v) for k, v in d["members"].items()},
                linkage=np.asarray(d["linkage"], dtype=np.float64).reshape(-1, 4),
                correlation=corr.loc[symbols, symbols].astype(np.float64),
                dominant_reason=str(d.get("dominant_reason", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"cluster result: malformed dict ({err!r}); expected the keys written by "
                            "ClusterResult.to_dict") from err


def merge_small_clusters(labels: pd.Series, distance: pd.DataFrame, min_size: int) -> pd.Series:
    """Fold clusters smaller than ``min_size`` into their nearest cluster until none is left (or one remains).

    The smallest cluster (ties: the one whose alphabetically first member comes first) joins the cluster
    at the smallest average distance from its members (average linkage, Sokal & Michener 1958); repeated.

    Args:
        labels: symbol -> cluster label. distance: (n_assets, n_assets) distances labelled by symbol.
        min_size: fewest assets a cluster may hold (>= 1; 1 changes nothing).

    Returns:
        symbol -> label, labels renumbered 0..K'-1 in the order of their first appearance in ``labels``.

    Raises:
        ConfigError: min_size < 1.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ConfigError(f"min_cluster_size={min_size!r}: expected an integer >= 1")
    lab = labels.copy()
    while lab.nunique() > 1:
        sizes = lab.value_counts()
        small = [c for c in sizes.index if sizes[c] < min_size]
        if not small:
            break
        c = min(small, key=lambda k: (sizes[k], min(str(s) for s in lab.index[lab == k])))
        members = lab.index[lab == c]
        others = {k: float(distance.loc[members, lab.index[lab == k]].to_numpy().mean())
                  for k in sizes.index if k != c}
        lab[members] = min(others, key=lambda k: (others[k], k))
    return pd.Series(pd.factorize(lab)[0].astype(np.int64), index=lab.index, name=labels.name)


def _pick_dominant(labels: pd.Series, corr: pd.DataFrame, dollar_volume: pd.Series | None,
                   prefix: str | None) -> tuple[int, str]:
    """Raw label of the dominant cluster and the reason (rules in ``cluster_assets``)."""
    symbols = sorted(labels.index)
    if prefix:
        for s in symbols:
            if str(s).upper().startswith(prefix.upper()):
                return int(labels[s]), f"holds {s}"
    if dollar_volume is not None:
        dv = pd.Series(dollar_volume, dtype=np.float64)
        missing = [s for s in symbols if s not in dv.index]
        if missing:
            raise DataError(f"dollar_volume: no value for {', '.join(map(str, missing))}; expected symbol -> "
                            "mean(close * volume) for every clustered asset")
        dv = dv.loc[symbols]
        if not np.isfinite(dv.to_numpy()).all() or (dv < 0).any():
            raise DataError("dollar_volume: expected finite values >= 0 (mean close * volume per symbol)")
        total = dv.groupby(labels.loc[symbols].to_numpy()).sum()
        best = int(total.idxmax())
        return best, f"highest total dollar volume ({total[best]:,.0f})"
    a = np.abs(corr.to_numpy(dtype=np.float64, copy=True))
    n = a.shape[0]
    np.fill_diagonal(a, np.nan)
    per_asset = np.nanmean(a, axis=1) if n > 1 else np.ones(1)
    score = pd.Series(per_asset, index=corr.index).groupby(labels.loc[corr.index].to_numpy()).mean()
    best = int(score.idxmax())
    return best, f"highest mean |correlation| with all assets ({score[best]:.3f})"


def _canonical_ids(raw: pd.Series, dominant_raw: int) -> dict[str, int]:
    """symbol -> canonical cluster id from the raw labels (symbol -> label): the dominant cluster 0, the others
    1.. ordered by their alphabetically first member; keys sorted."""
    first_member = {int(lab): min(str(s) for s in raw.index[raw.to_numpy() == lab]) for lab in np.unique(raw)}
    others = sorted((lab for lab in first_member if lab != dominant_raw), key=lambda lab: first_member[lab])
    canonical = {dominant_raw: 0, **{lab: i + 1 for i, lab in enumerate(others)}}
    return {str(s): canonical[int(lab)] for s, lab in sorted(raw.items(), key=lambda kv: str(kv[0]))}


def cluster_assets(returns: pd.DataFrame, *, n_clusters: int | None = 3, distance_threshold: float | None = None,
                   dollar_volume: pd.Series | None = None, dominant_symbol_prefix: str | None = "BTC",
                   min_cluster_size: int = 1, signed: bool = False) -> ClusterResult:
    """Cluster assets by return correlation and find the dominant cluster.

    Steps: ``correlation_distance`` (pairwise-complete Pearson, distance 1 - |corr|) ->
    ``WardClusterer`` (Ward 1963) -> dominant cluster -> canonical ids.

    Dominant cluster, first rule that applies (recorded in ``dominant_reason``):

    1. the cluster holding a symbol starting with ``dominant_symbol_prefix`` (case-insensitive;
       the alphabetically first such symbol if several) -> "holds BTCUSDT";
    2. else, with ``dollar_volume``, the cluster with the highest total dollar volume;
    3. else (close-only data) the cluster whose members have the highest mean |corr| with all
       other assets (the most market-like group).

    Canonical ids: dominant = 0, the others 1.. ordered by their alphabetically first member,
    so ids do not depend on scipy's numbering.

    Fewer than 2 assets: no tree to build; a single cluster 0 and an empty (0, 4) linkage
    (n_clusters is not checked then).

    Args:
        returns: (n_timestamps, n_assets) log returns (e.g. ``align_log_returns``); fit this on the
            fold's training window only (no look-ahead).
        n_clusters: number of clusters (Ward tree cut by count).
        distance_threshold: cut height instead; when set it takes precedence and ``n_clusters``
            is ignored (so callers need not also pass ``n_clusters=None``).
        dollar_volume: optional symbol -> mean(close * volume) in quote currency
            (``Panel.dollar_volume()``); must cover every asset if given.
        dominant_symbol_prefix: prefix that marks the market leader ("BTC"); None/"" disables rule 1.
        min_cluster_size: clusters with fewer assets join their nearest cluster (:func:`merge_small_clusters`);
            1: the Ward cut as it is.
        signed: cluster on ``(1 - corr) / 2`` rather than ``1 - |corr|`` (see ``correlation_distance``).

    Returns:
        ClusterResult.

    Raises:
        ConfigError: bad n_clusters / distance_threshold (see ``WardClusterer``).
        DataError: bad returns (see ``correlation_distance``); dollar_volume missing a symbol or
            holding negative / non-finite values.
    """
    corr, dist = correlation_distance(returns, signed=signed)
    symbols = list(corr.index)
    if len(symbols) < 2:
        raw = pd.Series(np.zeros(len(symbols), dtype=np.int64), index=symbols)
        link = np.empty((0, 4))
    else:
        k = None if distance_threshold is not None else n_clusters
        model = WardClusterer(n_clusters=k, distance_threshold=distance_threshold).fit(dist)
        raw, link = model.labels_, model.linkage_matrix_
        raw = merge_small_clusters(raw, dist, min_cluster_size)
    dominant_raw, reason = _pick_dominant(raw, corr, dollar_volume, dominant_symbol_prefix)

    cluster_map = _canonical_ids(raw, dominant_raw)
    members = {cid: sorted(s for s, c in cluster_map.items() if c == cid) for cid in sorted(set(cluster_map.values()))}
    return ClusterResult(cluster_map=cluster_map, dominant_cluster=0, members=members, linkage=link,
                         correlation=corr, dominant_reason=reason)
