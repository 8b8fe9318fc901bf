"""Small durable state the connector keeps beside the data: watermarks, sweep results, hook
status, leases. One port (`ports.py`); Azure Table Storage in Azure (`azure_tables.py`), SQLite
on one machine (`local/state`)."""
