"""The package that launches sweeps: command lines, search spaces, checks before Ray, the Tuner with its MLflow parent
run, and the terminal output. The experiment scripts in ``sweeps/`` are short records built on it.

Nothing here imports ``sweeps`` or ``analysis``; the MLflow queries it shares with the analysis are in ``runstore``.
"""
