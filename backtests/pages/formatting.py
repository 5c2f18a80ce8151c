"""How the pages show figures: each statistic's label and unit, numbers for people."""

import math

# name -> (label, kind): "pct" a fraction shown as a percentage, "num" a number,
# "int" a count, "money" an amount in the account's currency, "dur" seconds.
METRICS = {
    "total_return": ("Total return", "pct"),
    "buy_and_hold_return": ("Buy and hold return", "pct"),
    "cagr": ("CAGR", "pct"),
    "annual_return": ("Annual return", "pct"),
    "annual_volatility": ("Annual volatility", "pct"),
    "sharpe": ("Sharpe ratio", "num"),
    "sortino": ("Sortino ratio", "num"),
    "calmar": ("Calmar ratio", "num"),
    "max_drawdown": ("Max drawdown", "pct"),
    "avg_drawdown": ("Average drawdown", "pct"),
    "max_drawdown_duration_s": ("Longest drawdown", "dur"),
    "trades": ("Trades", "int"),
    "hit_rate": ("Win rate", "pct"),
    "best_trade": ("Best trade", "pct"),
    "worst_trade": ("Worst trade", "pct"),
    "avg_win": ("Average win", "pct"),
    "avg_loss": ("Average loss", "pct"),
    "expectancy": ("Expectancy", "pct"),
    "profit_factor": ("Profit factor", "num"),
    "sqn": ("SQN", "num"),
    "kelly": ("Kelly criterion", "num"),
    "exposure_time": ("Exposure time", "pct"),
    "turnover": ("Turnover", "num"),
    "fees_paid": ("Fees paid", "money"),
    "slippage_share": ("Slippage share of costs", "pct"),
}
SUMMARY = ("total_return", "sharpe", "max_drawdown")


def figure(value, kind: str) -> str:
    """A statistic as text; a dash when it is undefined for the run."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "\u2013"  # an en dash
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "dur":
        return duration(value)
    return f"{value:,.3f}"


def duration(seconds: float) -> str:
    """Seconds as days, hours or minutes."""
    if seconds >= 86_400:
        return f"{seconds / 86_400:,.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:,.1f} hours"
    return f"{seconds / 60:,.0f} minutes"


def statistics(metrics: dict | None) -> list[dict]:
    """The statistics table's rows: name, label, text and raw value."""
    if not metrics:
        return []
    return [
        {
            "name": name,
            "label": label,
            "text": figure(metrics.get(name), kind),
            "value": metrics.get(name),
        }
        for name, (label, kind) in METRICS.items()
    ]


def params_text(params: dict) -> str:
    """A strategy's parameters on one line: fast=20, slow=50."""
    return ", ".join(f"{key}={value}" for key, value in sorted(params.items()))
