"""STSS runtime: conventions, frame dumps, the history, models, passes, back-ends, training and
evaluation (``python -m stss_runtime VERB``: :mod:`stss_runtime.cli`)."""
