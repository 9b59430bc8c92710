"""UIAT's tables and figures, computed from sweeps' runs; ``analysis/uiat_tables.py`` is their command line."""
