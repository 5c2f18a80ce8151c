"""Walk-forward analysis: choose on a training part, judge on the part that follows
(docs/sweeps.md#walk-forward).

The bars are cut into windows: a training part of `train`, then a test part of `test`,
the next window starting `step` later. In each window, every variant is computed on the
training part and the best by `maximize` is chosen; the chosen variant's targets are then
computed over training and test together (so that its indicators are warm at the test's
first bar) and simulated on the test part alone, from a flat account. The stitched
out-of-sample run trades the test parts one after another, each with its window's
choice, as one account.
"""

from dataclasses import dataclass

import numpy as np

from backtests.engine import metrics, strategies, sweep
from backtests.engine.bars import Bars
from backtests.engine.run import EngineError, strategy_targets
from backtests.engine.simulation import Costs, Simulation, simulate

# A duration's units: minutes, hours, days, weeks.
DURATION_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
NS = 1_000_000_000


class WindowsError(ValueError):
    """Window lengths that give no usable window over the bars."""


@dataclass(frozen=True)
class Window:
    """One window's parts, as bar positions [start, stop)."""

    number: int
    train_start: int
    train_stop: int
    test_stop: int

    @property
    def test_start(self) -> int:
        return self.train_stop


def advance(ts: np.ndarray, start: int, length: dict[str, int]) -> int:
    """The bar position `length` ({"bars": n} or {"seconds": s}) after `start`."""
    if "bars" in length:
        return start + length["bars"]
    return int(np.searchsorted(ts, ts[start] + length["seconds"] * NS, side="left"))


def windows(ts: np.ndarray, train: dict, test: dict, step: dict) -> list[Window]:
    """Every whole window over the bars.

    By durations, windows are anchored in time: window k trains on [t0 + k x step,
    + train) and tests on the `test` that follows, t0 the first bar's time, so that
    nights, weekends and holidays do not shift them; a window whose parts hold fewer
    than two bars (a gap in the data) is left out, and one counts only when the bars go
    on past its test part. By bars (or a mix), each part holds that many bars.
    WindowsError when there is no window, or when a step shorter than the test part would
    make the test parts overlap (their stitched run would trade one bar twice).
    """
    if all("seconds" in length for length in (train, test, step)):
        found = by_time(ts, train["seconds"], test["seconds"], step["seconds"])
    else:
        found = by_bars(ts, train, test, step)
    if not found:
        raise WindowsError(
            f"the {len(ts):,} bars hold no whole window of train + test: shorten them"
        )
    return found


def by_time(ts: np.ndarray, train: int, test: int, step: int) -> list[Window]:
    """Windows anchored at the first bar's time, every `step` seconds."""
    if step < test:
        raise WindowsError(
            "step is shorter than test: the test parts would overlap (give step >= test)"
        )
    found: list[Window] = []
    anchor = int(ts[0])
    while True:
        edges = anchor + np.array([0, train, train + test], dtype=np.int64) * NS
        start, train_stop, test_stop = np.searchsorted(ts, edges, side="left").tolist()
        if test_stop >= len(ts):
            break  # the bars do not go on past this test part: it is not whole
        if train_stop - start >= 2 and test_stop - train_stop >= 2:
            found.append(Window(len(found), start, train_stop, test_stop))
        anchor += step * NS
    return found


def by_bars(ts: np.ndarray, train: dict, test: dict, step: dict) -> list[Window]:
    """Windows of so many bars (or a duration from the part's first bar)."""
    found: list[Window] = []
    start = 0
    while start < len(ts):
        train_stop = advance(ts, start, train)
        if train_stop >= len(ts):
            break
        test_stop = advance(ts, train_stop, test)
        # A test part by duration is whole when the bars go on past its end.
        if test_stop > len(ts) or ("seconds" in test and test_stop == len(ts)):
            break
        if train_stop - start < 2 or test_stop - train_stop < 2:
            raise WindowsError("each training and test part must hold at least two bars")
        if found and train_stop < found[-1].test_stop:
            raise WindowsError(
                "step is shorter than test: the test parts would overlap (give step >= test)"
            )
        found.append(Window(len(found), start, train_stop, test_stop))
        following = advance(ts, start, step)
        if following <= start:
            raise WindowsError("step must move the window forward by at least one bar")
        start = following
    return found


def slice_bars(series: Bars, start: int, stop: int) -> Bars:
    """The bars at positions [start, stop)."""
    return Bars(
        series.ts[start:stop],
        series.open[start:stop],
        series.high[start:stop],
        series.low[start:stop],
        series.close[start:stop],
        series.volume[start:stop],
        series.interval,
        series.tz,
    )


@dataclass(frozen=True)
class WindowResult:
    """One window: the chosen variant (its metrics in sample) and its test figures."""

    window: Window
    chosen: sweep.Outcome | None  # the best on the training part
    test_metrics: dict | None  # the chosen variant on the test part
    error: str = ""

    def describe(self, series: Bars) -> dict:
        """The window as the API lists it."""
        w = self.window
        return {
            "window": w.number,
            "train": part(series, w.train_start, w.train_stop),
            "test": part(series, w.test_start, w.test_stop),
            "variant": None if self.chosen is None else self.chosen.index,
            "params": None if self.chosen is None else self.chosen.params,
            "train_metrics": None if self.chosen is None else self.chosen.metrics,
            "test_metrics": self.test_metrics,
            "error": self.error,
        }


def part(series: Bars, start: int, stop: int) -> dict:
    """A window's part as the API lists it: its first and last bar, by position and time."""
    return {
        "from_bar": start,
        "to_bar": stop - 1,
        "from": iso(series.ts[start]),
        "to": iso(series.ts[stop - 1]),
    }


def iso(ns: np.int64) -> str:
    """UTC nanoseconds as ISO-8601 with a Z."""
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def oos_targets(
    strategy: strategies.Strategy, series: Bars, window: Window, params: dict, costs: Costs
) -> np.ndarray:
    """The variant's targets over the window's test part, computed over training and test
    together so that its indicators are warm at the test's first bar (EngineError if the
    strategy fails)."""
    warm = slice_bars(series, window.train_start, window.test_stop)
    targets = strategy_targets(strategy, warm, params, costs)
    return targets[window.test_start - window.train_start :]


def evaluate_window(
    strategy: strategies.Strategy,
    series: Bars,
    window: Window,
    variants: list[tuple[int, dict]],
    costs: Costs,
    maximize: str,
    should_stop=None,
) -> WindowResult:
    """Choose on the window's training part, then judge the choice on its test part."""
    train = slice_bars(series, window.train_start, window.train_stop)
    outcomes = sweep.evaluate(strategy, train, variants, costs, should_stop)
    chosen = sweep.best(outcomes, maximize)
    if chosen is None:
        return WindowResult(window, None, None, f"no variant has a {maximize} in training")
    try:
        targets = oos_targets(strategy, series, window, chosen.params, costs)
    except EngineError as exc:
        return WindowResult(window, chosen, None, str(exc))
    test = slice_bars(series, window.test_start, window.test_stop)
    values, _ = metrics.compute(simulate(test, targets, costs), test)
    return WindowResult(window, chosen, values)


def stitched(
    strategy: strategies.Strategy,
    series: Bars,
    choices: list[tuple[Window, dict | None]],
    costs: Costs,
) -> tuple[Bars, Simulation, dict, dict]:
    """The out-of-sample run: every test part in order, each traded with its window's
    choice (flat in a window without one), as one account: (bars, simulation, metrics,
    null_reasons)."""
    ordered = sorted(choices, key=lambda choice: choice[0].number)
    pieces = [slice_bars(series, w.test_start, w.test_stop) for w, _ in ordered]
    columns = ("ts", "open", "high", "low", "close", "volume")
    bars = Bars(
        *(np.concatenate([getattr(piece, name) for piece in pieces]) for name in columns),
        series.interval,
        series.tz,
    )
    targets = np.concatenate(
        [
            np.zeros(w.test_stop - w.test_start)
            if params is None
            else oos_targets(strategy, series, w, params, costs)
            for w, params in ordered
        ]
    )
    sim = simulate(bars, targets, costs)
    values, reasons = metrics.compute(sim, bars)
    return bars, sim, values, reasons
