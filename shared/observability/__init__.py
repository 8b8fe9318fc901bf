"""Structured logs and the correlation fields they carry."""
