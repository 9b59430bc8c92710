"""BiaMAT's tables and figures, computed from a sweep's runs; ``analysis/biamat_tables.py`` is their command line."""
