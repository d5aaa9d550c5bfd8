"""What a policy says about a served model: the drift and feedback limits that raise alerts.

These limits live in the policy file (its optional ``monitoring:`` section) because deciding how
much drift is tolerable is the same kind of declared value as deciding how much unfairness is:
an organisation states it, the ledger records the policy's digest, and ``ethos serve`` applies it.
The model is here, in governance, so that ``policy.py`` can validate it without importing the
serving room; ``ethos.serving.monitor`` imports it from here.

Every default below is a starting point with its reason, not a safe harbour; the bundled policies
set their own values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Share = Annotated[float, Field(ge=0, le=1)]


class MonitorThresholds(BaseModel):
    """Rolling-window sizes and the limits whose crossing raises a monitoring alert.

    Drift statistics compare the last ``window`` predictions with the reference distributions
    taken from the run's test set; feedback statistics use the last ``window`` fed-back labels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(
        default=200,
        ge=10,
        description="Predictions in the rolling window. 200 gives about 20 per bin of a 10-bin "
        "PSI (fewer makes PSI mostly sampling noise) and still turns over within hours at "
        "modest traffic, so a shift shows up the same day.",
    )
    min_window: int = Field(
        default=150,
        ge=1,
        description="No alert before the window holds this many predictions. Sampling alone "
        "gives a 10-bin PSI of about 9/n on n predictions: in simulation an unchanged "
        "distribution crosses 0.2 on 2 % of checks at n = 120 and 0.2 % at 150. Fewer would "
        "make the first requests after a restart alarm by chance.",
    )
    psi_max: float = Field(
        default=0.2,
        gt=0,
        description="Population stability index of the positive-class probabilities, on ten "
        "bins of equal test-set share (the least noisy binning). Rule of "
        "thumb from credit scoring (Siddiqi 2006, Credit Risk Scorecards; Yurdakul 2018): below "
        "0.1 no shift, 0.1 to 0.2 (0.25 in Siddiqi) moderate, above 0.2 significant; 0.2 is "
        "the stricter of the two common action levels.",
    )
    ks_pvalue_min: Share = Field(
        default=0.001,
        description="Two-sample Kolmogorov-Smirnov p-value of the probabilities below which the "
        "window is called a different distribution. Stricter than the usual 0.05 or 0.01 "
        "because the test is repeated on every check of overlapping windows: in simulation an "
        "unchanged model served 1000 predictions (50 checks) crossed 0.01 in about one run in "
        "four and 0.001 in one in fifteen, as often as the other limits.",
    )
    length_psi_max: float = Field(
        default=0.2,
        gt=0,
        description="PSI of input lengths (tokens), same rule of thumb as psi_max: longer or "
        "shorter texts than the model was tested on (another form, another source).",
    )
    oov_rate_delta_max: Share = Field(
        default=0.05,
        description="Rise of the mean out-of-vocabulary word rate over the reference, in "
        "absolute share (0.05 = five more words in a hundred without a whole WordPiece entry): "
        "jargon, typos, another language.",
    )
    embedding_shift_max: float = Field(
        default=0.25,
        gt=0,
        description="Distance of the window's mean embedding from the reference mean, in units "
        "of the reference spread (see ethos.serving.drift.embedding_mean_shift). Sampling "
        "alone gives about 1/sqrt(window) (0.07 at 200), so 0.25 is a real move of the inputs.",
    )
    positive_rate_delta_max: Share = Field(
        default=0.10,
        description="Absolute change of the share of positive decisions from the test set's: "
        "ten points more or fewer people flagged is a change a reviewer should see.",
    )
    group_min: int = Field(
        default=50,
        ge=1,
        description="Predictions a group needs in the window before its positive rate counts: "
        "the gap between two rates on 50 people each has a standard error of up to 0.1, so on "
        "fewer the gap limit would be crossed by chance.",
    )
    group_positive_rate_gap_max: Share = Field(
        default=0.20,
        description="Largest minus smallest positive rate between groups in the window "
        "(demographic parity difference, Dwork et al. 2012). Base rates can differ between "
        "groups, so this is a screen to look at, not a verdict.",
    )
    feedback_min: int = Field(
        default=30,
        ge=1,
        description="Fed-back labels needed before accuracy is judged: with 30 labels an "
        "accuracy of 0.7 has a standard error of about 0.08.",
    )
    feedback_accuracy_min: Share = Field(
        default=0.60,
        description="Accuracy on fed-back labels below which the model is flagged. A floor "
        "just above chance for a balanced task; set it a little under the audited test "
        "accuracy in the policy.",
    )
    feedback_group_min: int = Field(
        default=20,
        ge=1,
        description="Fed-back positives (for TPR) or negatives (for FPR) a group needs before "
        "its error rate enters the fairness gap.",
    )
    feedback_fairness_metric: Literal["equalized_odds", "equal_opportunity"] = Field(
        default="equalized_odds",
        description="Gap on fed-back labels: equalized odds = the larger of the TPR and FPR "
        "ranges between groups; equal opportunity = the TPR range only (Hardt et al. 2016).",
    )
    feedback_fairness_gap_max: Share = Field(
        default=0.20,
        description="Limit on that gap, as the criminal-justice policy's audit constraint.",
    )

    @model_validator(mode="after")
    def _windows_fit(self) -> MonitorThresholds:
        if self.min_window > self.window:
            raise ValueError(
                f"min_window ({self.min_window}) is larger than window ({self.window})"
            )
        if self.feedback_min > self.window:
            raise ValueError(
                f"feedback_min ({self.feedback_min}) is larger than window ({self.window}), "
                "which also bounds the fed-back labels kept"
            )
        return self
