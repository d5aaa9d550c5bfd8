"""Request and response bodies of the `/v1` API: the types are the OpenAPI document.

Inputs are either free texts or records (the run's fields, serialised exactly as in training).
Every field has limits, so a malformed or oversized body is a 422 or 413 that says which field
was wrong, never a server error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ethos.config import MAX_NEW_TOKENS

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


MAX_SEED = 2**32 - 1


class GenerateRequest(_Body):
    """Text to respond to: one ``prompt``, or several ``prompts`` answered in one request.

    Settings left out take the run's ``causal_lm.generation`` defaults (``GET /v1/model`` shows
    them). The limits are the run config's: ``max_new_tokens`` 1 to 4096 (and the prompt's tokens
    plus it must fit the model's context window), ``temperature`` 0 to 5 (0: greedy, the same
    prompt always gets the same text), ``top_p`` above 0 up to 1.
    """

    prompt: str | None = Field(None, description="One prompt, framed as in training.")
    prompts: list[str] | None = Field(
        None,
        min_length=1,
        description="Several prompts (at most the server's --max-prompts), answered in order.",
    )
    max_new_tokens: Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS)] | None = Field(
        None, description="Tokens to generate at most per prompt."
    )
    temperature: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] | None = Field(
        None, description="0: greedy decoding; above 0: sampling at this temperature."
    )
    top_p: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        None, description="Nucleus sampling: the smallest set of tokens reaching this mass."
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        None,
        description="Seed of the sampling: the same request with the same seed gets the same "
        "responses. Left out: a fresh seed, returned in the answer's settings.",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> GenerateRequest:
        if (self.prompt is None) == (self.prompts is None):
            raise ValueError("give exactly one of 'prompt' or 'prompts'")
        return self

    @property
    def all_prompts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None else list(self.prompts or [])


class GenerationSettings(BaseModel):
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int


class GenerateResponse(BaseModel):
    model_id: str
    decision_id: str | None = Field(
        ..., description="Ledger hash of the gate decision the model is served under."
    )
    responses: list[str] = Field(
        ...,
        description="One response per prompt, in order, with personal data (names, e-mail "
        "addresses, phone and card numbers, ...) replaced by <ENTITY_TYPE> placeholders.",
    )
    generation_ids: list[str] = Field(..., description="The log id of each response.")
    pii_masked: list[bool] = Field(
        ..., description="Per response: whether masking replaced anything in it."
    )
    settings: GenerationSettings = Field(
        ..., description="What generated the responses; send them again to reproduce them."
    )
    latency_ms: float = Field(..., description="Time in the server, queueing included.")


MAX_QUESTION_CHARS = 2_000
"""Longer questions are refused: a question, not a document (the knowledge base holds those)."""


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the question is empty")
    return text


Question = Annotated[
    str, Field(min_length=1, max_length=MAX_QUESTION_CHARS), AfterValidator(_not_blank)
]


class AnswerRequest(_Body):
    """A question for a grounded run: one ``question``, or several ``questions`` answered in one
    request (at most the server's input limit, as for POST /v1/predict)."""

    question: Question | None = Field(None, description="One question, in words.")
    questions: list[Question] | None = Field(
        None, min_length=1, description="Several questions, answered in order."
    )

    @model_validator(mode="after")
    def _one_shape(self) -> AnswerRequest:
        if (self.question is None) == (self.questions is None):
            raise ValueError("give exactly one of 'question' or 'questions'")
        return self

    @property
    def all_questions(self) -> list[str]:
        return [self.question] if self.question is not None else list(self.questions or [])


class CitationOut(BaseModel):
    rank: int = Field(..., description="1: the best passage (the one read, unless abstaining).")
    passage_id: str
    chunk_id: str = Field(..., description="The passage's chunk that matched best.")
    score: float = Field(..., description="Cosine similarity of the question and that chunk.")
    text: str = Field(..., description="That chunk's text (PII masked when the KB was built so).")


class GroundedAnswerOut(BaseModel):
    answer: str | None = Field(..., description="The reader's label; null when abstaining.")
    abstained: bool = Field(
        ...,
        description="True when the best passage's similarity is below the run's calibrated "
        "threshold: the knowledge base does not hold the answer.",
    )
    message: str | None = Field(..., description="'not in the knowledge base' when abstaining.")
    probabilities: dict[str, float] | None = Field(
        ..., description="The reader's class probabilities; null when abstaining."
    )
    retrieval_score: float = Field(..., description="The best passage's similarity.")
    threshold: float | None = Field(..., description="The abstention threshold it is held to.")
    read_passage: str | None = Field(..., description="The passage the reader read.")
    citations: list[CitationOut] = Field(..., description="The top passages, best first.")


class KnowledgeBaseOut(BaseModel):
    kb_sha256: str = Field(..., description="The knowledge base's hash, as the run recorded it.")
    fingerprint: str = Field(..., description="The hash of its passages.")
    encoder: str
    passages: int
    chunks: int


class AnswerResponse(BaseModel):
    model_id: str
    decision_id: str | None = Field(
        ..., description="Ledger hash of the gate decision the model is served under."
    )
    answers: list[GroundedAnswerOut] = Field(..., description="One answer per question, in order.")
    answer_ids: list[str] = Field(..., description="The log id of each answer.")
    knowledge_base: KnowledgeBaseOut = Field(
        ..., description="The knowledge base answered from: the one the run was gated with."
    )
    latency_ms: float = Field(..., description="Time in the server, queueing included.")


class ExplainRequest(_Body):
    """One input to explain, in POST /v1/predict's shape: ``{"inputs": [{...}], "target": ...}``.

    The body a client sends to predict can be sent here as it is (with exactly one input, since
    an explanation costs dozens of forward passes). The earlier shape, the input's ``text`` or
    ``record`` at the top level, is still accepted.
    """

    inputs: list[PredictInput] | None = Field(
        None,
        min_length=1,
        max_length=1,
        description="Exactly one input, as in POST /v1/predict. Its group is accepted and does "
        "not change the attributions (they explain probabilities, before any threshold).",
    )
    text: str | None = Field(None, description="Earlier shape: the text, without 'inputs'.")
    record: dict[str, Scalar] | None = Field(
        None, max_length=200, description="Earlier shape: the record, without 'inputs'."
    )
    target: str | None = Field(
        None, max_length=200, description="Label to explain; default: the predicted one."
    )

    @model_validator(mode="after")
    def _one_input(self) -> ExplainRequest:
        top_level = self.text is not None or self.record is not None
        if self.inputs is not None and top_level:
            raise ValueError("give the input in 'inputs' or as 'text'/'record', not both")
        if self.inputs is None and (self.text is None) == (self.record is None):
            raise ValueError(
                "give exactly one of 'text' or 'record' (or, as for /v1/predict, "
                '{"inputs": [{"text": "..."}]})'
            )
        return self

    @property
    def item(self) -> PredictInput:
        """The one input, whichever shape it came in."""
        if self.inputs is not None:
            return self.inputs[0]
        return PredictInput(text=self.text, record=self.record, group=None)


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


class CardSummary(BaseModel):
    """The run's model card as `ethos card` wrote it, read on each request (never rebuilt)."""

    available: bool = Field(..., description="False when the run directory has no card.")
    task: str
    data: str
    sensitive: list[str]
    markdown: str | None = Field(..., description="The card's path in the run directory.")
    html: str | None = Field(..., description="The card as a page, in the run directory.")
    url: str | None = Field(..., description="Where this server answers with that page.")
    updated_utc: str | None
    matches_served_decision: bool | None = Field(
        ...,
        description="Whether the card describes the gate decision being served; null when unknown.",
    )
    stale: Literal["server", "card"] | None = Field(
        ...,
        description="Which side is behind when they differ: 'server' when the run was gated "
        "again after the server started (restart `ethos serve`), 'card' when the card is older "
        "than the run's decision (run `ethos card`).",
    )
    decision: str | None = Field(..., description="The decision the card states.")
    policy: str | None
    welfare: float | None
    threshold: float | None
    decision_id: str | None = Field(..., description="Ledger hash of the card's decision.")
    intended_use: list[str] | None
    test_metrics: dict[str, float] = Field(
        ..., description="Test results from the card (from metrics.json when there is no card)."
    )


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
    card: CardSummary


class AlertOut(BaseModel):
    metric: str
    value: float | None
    threshold: float | None
    message: str
    created_utc: str


class RuleStateOut(BaseModel):
    metric: str
    value: float | None
    limit: float
    state: Literal["ok", "beyond the limit", "too few to judge", "not computed"]
    description: str


class MonitorState(BaseModel):
    """How much the monitor can judge yet: an empty alert list means little before that."""

    window_n: int
    window_size: int
    min_window: int
    drift_judged: bool = Field(
        ...,
        description="False while the window holds fewer than min_window predictions: no drift "
        "alert can be raised yet, so no alert means 'too few to judge', not 'all clear'.",
    )
    feedback_n: int
    feedback_min: int
    feedback_judged: bool
    rules: list[RuleStateOut]
    applicable: bool = Field(
        True,
        description="False for a model drift monitoring does not apply to (a causal LM, which "
        "has no class probabilities or reference embeddings to compare); 'note' says why.",
    )
    note: str | None = None


class AlertsResponse(BaseModel):
    active: list[AlertOut]
    recent: list[AlertOut]
    state: MonitorState


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error answer: what was wrong, and how to fix it, as separate fields."""

    error: str = Field(..., description="What was wrong, in one sentence.")
    hint: str | None = Field(..., description="How to fix it, when there is a known way.")
    detail: Any = Field(
        ...,
        description="Kept for clients of earlier versions: the same text as 'error', or for a "
        "malformed body (422) the list of field errors.",
    )
