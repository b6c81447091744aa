"""The suite's fixtures and hooks are the support plugin's
(tests/support/fixtures.py). tests/ and bench/ are on sys.path (pyproject's
`pythonpath`): helpers are imported as `support.<module>`."""

import pytest
from hypothesis import HealthCheck, settings

# assertions in support's helpers (support.outcomes.ok, ...) report like a test's own
pytest.register_assert_rewrite("support")

pytest_plugins = ["support.fixtures"]

# This suite shares two cores with kernel work and with itself (one run per
# interpreter in CI): how fast hypothesis generates inputs says nothing about
# the code under test, so its timing checks would only make runs flaky.
settings.register_profile("pycni", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pycni")
