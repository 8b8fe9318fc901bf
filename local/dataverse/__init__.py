"""The Dataverse Web API stand-in: the OData v4 endpoints the connector calls."""
