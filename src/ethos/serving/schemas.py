"""Request and response bodies of the `/v1` API: the types are the OpenAPI document.

Inputs are either free texts or records (the run's fields, serialised exactly as in training).
Every field has limits, so a malformed or oversized body is a 422 or 413 that says which field
was wrong, never a server error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_TEXT_CHARS = 100_000
"""Longer texts are refused (the model reads at most a few hundred tokens of them anyway)."""

Scalar = str | int | float | bool | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT_CHARS)


class PredictInput(_Body):
    """One thing to decide: a ``text``, or a ``record`` of the run's fields; never both."""

    text: str | None = Field(None, description="Free text, as the model was trained on.")
    record: dict[str, Scalar] | None = Field(
        None,
        description="The run's record fields by column name; serialised as in training.",
        max_length=200,
    )
    group: str | None = Field(
        None,
        max_length=200,
        description="The row's group for the run's sensitive attribute. Needed only when the run "
        "decides with per-group thresholds; also feeds per-group monitoring.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> PredictInput:
        if (self.text is None) == (self.record is None):
            raise ValueError("give exactly one of 'text' or 'record'")
        return self


class PredictRequest(_Body):
    inputs: list[PredictInput] = Field(
        ..., min_length=1, description="One or more inputs, decided in one request."
    )


class Prediction(BaseModel):
    prediction_id: str = Field(..., description="Quote it in POST /v1/feedback.")
    label: str
    probabilities: dict[str, float]
    thresholds_applied: bool = Field(
        ..., description="True when the run's per-group thresholds decided (group given)."
    )


class PredictResponse(BaseModel):
    model_id: str
    decision_id: str | None = Field(
        ..., description="Ledger hash of the gate decision the model is served under."
    )
    predictions: list[Prediction]


class ExplainRequest(_Body):
    text: str | None = None
    record: dict[str, Scalar] | None = Field(None, max_length=200)
    target: str | None = Field(
        None, max_length=200, description="Label to explain; default: the predicted one."
    )

    @model_validator(mode="after")
    def _one_input(self) -> ExplainRequest:
        if (self.text is None) == (self.record is None):
            raise ValueError("give exactly one of 'text' or 'record'")
        return self


class ExplainResponse(BaseModel):
    model_id: str
    label: str
    target: str
    tokens: list[str]
    attributions: list[float]
    completeness_delta: float = Field(
        ..., description="Integrated-gradients error: sum of attributions minus the score gap."
    )


class FeedbackRequest(_Body):
    prediction_id: str = Field(..., min_length=1, max_length=64)
    label: str = Field(..., min_length=1, max_length=200, description="The true label.")


class FeedbackResponse(BaseModel):
    prediction_id: str
    recorded: bool


class ModelInfo(BaseModel):
    model_id: str
    decision: str
    decision_id: str | None
    policy: str | None
    welfare: float | None
    threshold: float | None
    approved_by: str | None
    review_override_entry: str | None
    model: dict[str, Any]
    card: dict[str, Any]


class AlertOut(BaseModel):
    metric: str
    value: float | None
    threshold: float | None
    message: str
    created_utc: str


class AlertsResponse(BaseModel):
    active: list[AlertOut]
    recent: list[AlertOut]


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    detail: Any
