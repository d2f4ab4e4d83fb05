"""The published numbers every report compares against.

Modules: numbers (loads and validates the tables of SBv2, SwiftBrush v1 and DMD2 as data, with their
printed precision and markers); paper_tables.yaml (the numbers themselves, with their sources).
"""
