"""backtests.playback.limits.RateLimiter: the token bucket and the flood rule, on a fake clock."""

import itertools

from backtests.playback.limits import RateLimiter, Verdict


def run(limiter: RateLimiter, times: list[float]) -> list[Verdict]:
    return [limiter.check(t) for t in times]


def test_burst_then_sustained_rate() -> None:
    limiter = RateLimiter(rate=50, burst=100, now=0.0)
    verdicts = run(limiter, [0.0] * 100)
    assert verdicts == [Verdict.ALLOW] * 100
    assert limiter.check(0.0) is Verdict.WARN  # the 101st at once
    assert limiter.check(0.02) is Verdict.ALLOW  # one token back after 1/50 s


def test_sustained_rate_at_the_limit_is_never_dropped() -> None:
    limiter = RateLimiter(rate=50, burst=100, now=0.0)
    verdicts = run(limiter, [i / 50 for i in range(2000)])  # 40 s at exactly 50/s
    assert set(verdicts) == {Verdict.ALLOW}


def test_at_most_one_warning_a_second() -> None:
    limiter = RateLimiter(rate=1, burst=1, now=0.0)
    times = [i / 100 for i in range(300)]  # 100 messages a second for 3 s
    verdicts = run(limiter, times)
    warnings = [t for t, v in zip(times, verdicts, strict=True) if v is Verdict.WARN]
    assert len(warnings) == 3
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(warnings))


def test_flooding_for_the_limit_closes() -> None:
    limiter = RateLimiter(rate=10, burst=10, now=0.0, flood_seconds=10)
    times = [i / 100 for i in range(1100)]  # 100 a second for 11 s
    verdicts = run(limiter, times)
    first_close = times[verdicts.index(Verdict.CLOSE)]
    assert 10.0 <= first_close < 10.2


def test_a_pause_ends_the_flood() -> None:
    limiter = RateLimiter(rate=10, burst=10, now=0.0, flood_seconds=10)
    for start in (0, 8, 16):  # 6 s floods with 2 s pauses: never 10 s in a row
        verdicts = run(limiter, [start + i / 100 for i in range(600)])
        assert Verdict.CLOSE not in verdicts


def test_dropped_count() -> None:
    limiter = RateLimiter(rate=1, burst=2, now=0.0)
    run(limiter, [0.0] * 5)
    assert limiter.dropped == 3
