"""Changzhou veterans affairs statistics API."""
