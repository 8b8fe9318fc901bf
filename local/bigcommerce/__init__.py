"""The BigCommerce store simulator: the REST API and webhooks of the stores the stack serves."""
