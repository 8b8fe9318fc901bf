"""What the local stand-ins (the BigCommerce simulator, the Dataverse stand-in) share: the request
log, fault injection, the latency and rate settings, and the plumbing of their admin APIs."""
