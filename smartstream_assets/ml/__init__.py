"""Shared ML mechanisms: features, training with search, MLflow registry, promotion,
scoring, drift, alerts. Domains (``smartstream_assets.domains``) pass parameters.

Nothing here is imported when the code location loads: sklearn, MLflow and
Evidently are imported inside the functions that need them.
"""
