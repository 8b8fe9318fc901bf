"""Dataverse: the schema the connector writes, the Web API client, provisioning.

The client is `client.DataverseClient` (one per process, gate in `gate.py`, typed errors in
`errors.py`); an order is written in one `$batch` request by `intake.write_order`.
"""
