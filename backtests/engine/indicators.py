"""Indicators over price arrays: rolling means and the extremes of past windows.

Rolling means decide crossovers, so two windows whose true means are equal must compare
equal. A running float sum cannot promise that (its rounding error grows with the
series), so prices on a decimal tick (up to 8 places: cents, pips, satoshis) are summed
as whole ticks, which float64 adds exactly; each mean is then one correctly rounded
division, so equal means give the same float and unequal ones keep their order. Prices
on no such tick fall back to a float sum taken from the first price (docs/engine.md).
"""

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from backtests.engine.memo import memoized

MAX_PLACES = 8
EXACT = 2.0**53  # float64 holds every integer below this exactly


def decimal_ticks(values: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(values in whole ticks, ticks per unit) for the fewest decimal places that fit,
    when every running sum of ticks stays exact; None otherwise."""
    if len(values) == 0:
        return None
    for places in range(MAX_PLACES + 1):
        scale = 10.0**places
        ticks = np.rint(values * scale)
        # Exactly the values, not near them: a parsed decimal is the float nearest to it,
        # and so is ticks / scale (one correctly rounded division). A tolerance would take
        # 1.000001 for 1 at zero places, or 0.000001 for nothing.
        if np.array_equal(ticks / scale, values):
            if float(np.abs(ticks).sum()) >= EXACT:
                return None
            return ticks, scale
    return None


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each bar; NaN before there are enough.

    In a sweep (memo.shared), each window's mean over one series is computed once."""
    return memoized(
        "rolling_mean", values, window, lambda: compute_rolling_mean(values, window), copy=True
    )


def compute_rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """rolling_mean, computed."""
    out = np.full(len(values), np.nan)
    if len(values) < window:
        return out
    ticked = memoized("decimal_ticks", values, None, lambda: decimal_ticks(values))
    if ticked is not None:
        ticks, scale = ticked
        sums = np.cumsum(ticks)  # exact: integers below 2**53
        window_sums = sums[window - 1 :].copy()
        window_sums[1:] -= sums[:-window]
        out[window - 1 :] = window_sums / (window * scale)
        return out
    anchor = float(values[0])
    sums = np.cumsum(values - anchor)
    window_sums = sums[window - 1 :].copy()
    window_sums[1:] -= sums[:-window]
    out[window - 1 :] = window_sums / window + anchor
    return out


def previous_extreme(values: np.ndarray, window: int, reduce: Callable) -> np.ndarray:
    """reduce() of the `window` values before each bar (not including it); NaN before."""
    return memoized(
        "previous_extreme",
        values,
        (window, reduce),
        lambda: compute_previous_extreme(values, window, reduce),
        copy=True,
    )


def compute_previous_extreme(values: np.ndarray, window: int, reduce: Callable) -> np.ndarray:
    """previous_extreme, computed."""
    out = np.full(len(values), np.nan)
    if len(values) > window:
        out[window:] = reduce(sliding_window_view(values[:-1], window), axis=1)
    return out
