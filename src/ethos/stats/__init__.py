"""Statistics of plain arrays, below every stage that reports a number with its uncertainty.

The stratified bootstrap (:mod:`ethos.stats.bootstrap`) and the informativeness rule
(:mod:`ethos.stats.informativeness`) are used by training (metrics.json) and the audit
(audit.json) alike, so they depend on numpy alone.
"""
