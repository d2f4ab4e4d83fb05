"""Metrics; each writes a JSON record with its provenance."""
