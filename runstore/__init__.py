"""Reading the MLflow store of sweeps and trials (``runstore.reader``), below both ``launch`` and ``analysis``."""
