"""AFS's tables and figures, computed from a sweep's runs; ``analysis/afs_tables.py`` is their command line."""
