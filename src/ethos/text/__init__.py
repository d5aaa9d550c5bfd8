"""Text utilities below every stage that reads text: PII detection and masking (Presidio),
perturbations (typos, term swaps) and the vendored lexicons they use.

They serve the data layer (``ethos data scrub``), training (adversarial augmentation), the audit
(robustness, explanations, privacy) and serving (masked prediction logs), so they live below all
of them rather than inside the audit.
"""

from ethos.errors import EthosError


class TextError(EthosError):
    """A text utility that cannot run as asked (e.g. an optional resource is not installed)."""
