"""BigCommerce webhook events: their models, and the message each becomes."""
