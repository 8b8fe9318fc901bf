"""Dataverse: the schema the connector writes, the Web API client, provisioning."""
