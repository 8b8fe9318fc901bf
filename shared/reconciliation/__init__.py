"""Reconciliation: the timer sweep that compares BigCommerce with what Dataverse recorded and
enqueues every order that is missing or stale, so that nothing a lost webhook or a lost Dataverse
change left behind stays behind (`sweep.py`, `reverse.py`, `metrics.py`; the port is
`ports.SyncLedger`, its Dataverse adapter `shared/dataverse/sync_ledger.py`)."""
