"""Kernel bank: 1-D templates that initialise the archetype experts' first layer.

Every template is a causal 1-D kernel over time (oldest tap first, newest last), L2-normalised
and right-aligned in a vector of ``KERNEL_LENGTH`` taps (zeros before it). Seed 003 describes some
as 3x3 / 5x5 image kernels over chart images; our inputs are time series, so the 2-D ones are
reduced to their 1-D time profile (a diagonal trend kernel is a ramp; a Sobel-like edge is a
difference).

The archetypes are the archetype rows of the expert table (:data:`fleet.models.specs.ARCHETYPES`). ``options_skew``
needs implied-volatility surfaces (time x strike grids); our data has no implied vols, so there is no options_skew
expert (:data:`fleet.models.specs.NOT_POSSIBLE`) — asking for one is an error, never a fake.
"""

from __future__ import annotations

import numpy as np

from fleet.models.specs import ARCHETYPES, NOT_POSSIBLE

KERNEL_LENGTH = 51  # long enough for the SMA-50 box


def _gauss(n: int, sigma: float) -> np.ndarray:
    t = np.arange(n) - (n - 1) / 2
    return np.exp(-0.5 * (t / sigma) ** 2)


def _ema(n: int, span: int) -> np.ndarray:
    a = 2.0 / (span + 1)
    return a * (1 - a) ** np.arange(n)[::-1]


def _hs(n: int = 25) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return (0.6 * np.exp(-((t - 0.2) / 0.07) ** 2) + np.exp(-((t - 0.5) / 0.08) ** 2)
            + 0.6 * np.exp(-((t - 0.8) / 0.07) ** 2))


def _double_bottom(n: int = 25) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return -(np.exp(-((t - 0.3) / 0.1) ** 2) + np.exp(-((t - 0.7) / 0.1) ** 2))


def shared_templates() -> dict[str, np.ndarray]:
    """SMA boxes K in {5, 20, 50}, EMA-20, Gaussians sigma 1 and 2, the 1x5 gap (high-pass) detector."""
    return {"sma5": np.ones(5), "sma20": np.ones(20), "sma50": np.ones(50), "ema20": _ema(50, 20),
            "gauss1": _gauss(5, 1.0), "gauss2": _gauss(9, 2.0), "gap": np.array([-1.0, -1.0, 0.0, 1.0, 1.0])}


def special_templates(archetype: str) -> dict[str, np.ndarray]:
    """Seed 003's specialised kernels of one archetype.

    Raises:
        ValueError: unknown archetype, or ``options_skew`` (not possible with our data).
    """
    if archetype in NOT_POSSIBLE:
        raise ValueError(f"archetype={archetype!r} is not possible: {NOT_POSSIBLE[archetype]}")
    if archetype == "crypto_hft":
        return {"dog_1_3": _gauss(13, 1.0) / _gauss(13, 1.0).sum() - _gauss(13, 3.0) / _gauss(13, 3.0).sum(),
                "meanrev11": np.r_[-np.ones(10) / 10, 1.0], "delta4": np.array([1.0, -4.0, 6.0, -4.0, 1.0])}
    if archetype == "equity_intraday":
        return {"momentum_comb": np.array([-1.0, -2.0, 0.0, 2.0, 1.0]), "ramp_up": np.arange(1.0, 11.0),
                "ramp_down": np.arange(10.0, 0.0, -1.0)}
    if archetype == "equity_daily":
        return {"head_shoulders": _hs(), "double_bottom": _double_bottom()}
    if archetype == "futures_trend":
        return {"trend7": np.linspace(-1, 1, 7), "diag_up": np.linspace(-1, 1, 25), "diag_down": np.linspace(1, -1, 25)}
    if archetype == "low_vol_etf":
        return {"lowpass11_s4": _gauss(11, 4.0), "mean_cross_residual": np.r_[-np.ones(19) / 19, 1.0]}
    raise ValueError(f"archetype={archetype!r}: expected one of {list(ARCHETYPES)}")


def kernel_bank(archetype: str) -> tuple[list[str], np.ndarray]:
    """Names and kernels (n_kernels, KERNEL_LENGTH) of an archetype: shared + special templates."""
    templates = {**shared_templates(), **special_templates(archetype)}
    bank = np.zeros((len(templates), KERNEL_LENGTH))
    for i, k in enumerate(templates.values()):
        k = np.asarray(k, dtype=np.float64)
        k = k - k.mean() if k.min() < 0 else k  # high-pass templates are zero-mean
        bank[i, -len(k):] = k / (np.linalg.norm(k) or 1.0)
    return list(templates), bank
