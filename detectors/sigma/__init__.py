"""Sigma detection engine: rules parsed with pySigma, compiled once into Python predicates,
indexed by logsource and exact-match fields, plus correlations, dedup/threshold and suppressions.

Entry points: :func:`detectors.sigma.loader.load_pack` (rules from YAML files) and
:class:`detectors.sigma.engine.DetectionEngine` (events in, finding drafts out).
"""
