"""Assertions on a plugin run's Outcome (pycni.skel.testing): succeeded or
failed the way a test expects, and what it printed."""

from __future__ import annotations


def ok(outcome) -> dict | None:
    """The run succeeded (exit status 0); its JSON result."""
    assert outcome.ok, outcome
    return outcome.json


def ok_quiet(outcome) -> dict | None:
    """The run succeeded and printed nothing on stderr; its JSON result."""
    assert outcome.exit_code == 0, outcome
    assert not outcome.stderr, outcome
    return outcome.json


def err(outcome) -> tuple[int, str]:
    """The run failed with a CNI error (exit status 1, no traceback); its
    (code, msg)."""
    assert outcome.exit_code == 1, outcome
    assert "Traceback" not in outcome.stderr, outcome
    e = outcome.json
    return e["code"], e["msg"]
