"""The suite's fixtures and hooks are the support plugin's
(tests/support/fixtures.py). tests/ and bench/ are on sys.path (pyproject's
`pythonpath`): helpers are imported as `support.<module>`."""

import pytest

# assertions in support's helpers (support.outcomes.ok, ...) report like a test's own
pytest.register_assert_rewrite("support")

pytest_plugins = ["support.fixtures"]
