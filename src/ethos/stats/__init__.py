"""Statistics of plain arrays, below every stage that reports a number with its uncertainty.

The stratified bootstrap (:mod:`ethos.stats.bootstrap`) and the informativeness rule
(:mod:`ethos.stats.informativeness`) are used by training (metrics.json) and the audit
(audit.json) alike, so they depend on numpy alone. The governance diff and the evidence-aware
gate (issue 17) add paired parent/child bootstrap deltas (:mod:`ethos.stats.paired`) and sample
sizes for a difference of two proportions (:mod:`ethos.stats.power`, on scipy's normal law).
The one-run privacy audit's epsilon lower bound (:mod:`ethos.stats.privacy_audit`, Steinke, Nasr
& Jagielski 2023) turns canary membership scores into a checkable bound (issue 18).
"""
