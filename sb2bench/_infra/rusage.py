"""The log line that carries a warm worker's own CPU seconds and peak RSS. Its own module because the warm
client writes it and ``report/benchmarks.py`` reads it, and the warm server imports the CLI, which imports
the reports: a constant here keeps that a chain, not a cycle."""

RUSAGE_TAG = "[sb2bench warm] worker rusage "
