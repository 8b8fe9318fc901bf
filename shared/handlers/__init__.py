"""Service-layer handlers: plain functions the trigger adapters call."""
