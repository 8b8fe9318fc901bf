"""Test-wide defaults: a valid configuration, so the function app can be imported."""

import os

from hypothesis import HealthCheck, settings

BASELINE_ENV = {
    "BIGCOMMERCE_STORES": "teststore1",
    "BIGCOMMERCE_TESTSTORE1_ACCESS_TOKEN": "test-access-token",
    "BIGCOMMERCE_TESTSTORE1_WEBHOOK_SECRET": "test-webhook-secret",
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
}
for _name, _value in BASELINE_ENV.items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("SERVICEBUS_TRANSPORT", "local")
os.environ.setdefault("STATE_TRANSPORT", "local")

# Property-based tests (tests/fuzz) run the same examples on every CI run; HYPOTHESIS_PROFILE=deep
# explores further on a developer's machine and remembers failures in .hypothesis/.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
