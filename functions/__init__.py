"""Thin trigger adapters, one blueprint each: parse the trigger, call a handler, map the result."""
