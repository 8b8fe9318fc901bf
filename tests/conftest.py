"""Test-wide defaults: a valid configuration, so the function app can be imported."""

import os

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
