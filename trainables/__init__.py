"""Trial-side library: models, data, attacks, evaluation, the shared trial runtime and one module per method.

Nothing here imports ``sweeps`` or ``analysis``: a sweep launches trials, a trial logs to MLflow, analysis reads MLflow.
"""
