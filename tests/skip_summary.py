"""The pytest hook that summarises skipped tests once per reason, with how many it skipped.

``-rs`` (or ``-ra``) prints one ``SKIPPED`` line per test: hundreds when a backend is missing.
This prints one line per distinct reason instead, in the terminal summary, which pytest ends with
its count line. tests/conftest.py calls :func:`summarise_skips` from its terminal-summary hook;
a conftest that needs nothing else imports :func:`pytest_terminal_summary`.
"""

from __future__ import annotations

from collections import Counter


def _skip_reason(report) -> str:
    """The reason a skipped test report gives (its message, without pytest's prefix)."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def summarise_skips(terminalreporter):
    """One line per distinct skip reason, with how many tests it skipped."""
    reasons = Counter(
        _skip_reason(report)
        for report in terminalreporter.stats.get("skipped", [])
        if report.skipped  # not xfail (their reports carry a wasxfail instead)
        and not hasattr(report, "wasxfail")
    )
    if not reasons:
        return
    terminalreporter.section("skipped, by reason", sep="-")
    for reason, count in reasons.most_common():
        terminalreporter.line(f"{count:5d}  {reason}")


def pytest_terminal_summary(terminalreporter):
    """The hook itself, for a conftest that imports it by this name."""
    summarise_skips(terminalreporter)
