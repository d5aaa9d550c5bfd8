"""Run configuration: one YAML file, validated by pydantic, the single source of truth for defaults.

A run is fully described by a :class:`RunConfig`. Every section is its own strict model (unknown
keys are rejected) so a typo such as ``labl:`` fails loudly instead of silently using a default.
:func:`load_config` turns pydantic's errors into one message that names the file, the key, its line
and what was expected.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from ethos.errors import ConfigError

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
MAX_STATEMENT_CHARS = 2000
"""Longest intended-use statement: a paragraph for the model card, not a document."""
Statement = Annotated[str, Field(min_length=1, max_length=MAX_STATEMENT_CHARS)]


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_unused(dumped: Any, model: BaseModel, keys: tuple[str, ...]) -> Any:
    """``dumped`` less the ``keys`` whose value is None.

    A run's config hash is the sha256 of its dumped config, so a key added later with a None
    default would change the hash of every config that does not use it: runs started before
    could no longer be resumed, and recorded hashes could no longer be recomputed.
    """
    if isinstance(dumped, dict):
        for key in keys:
            if getattr(model, key) is None:
                dumped.pop(key, None)
    return dumped


class SplitConfig(StrictModel):
    """How rows are divided into train, validation and test parts."""

    validation: Fraction = 0.15
    test: Fraction = 0.15
    seed: int = 13
    group_aware: bool = Field(
        default=True,
        description="Stratify by label and group so every group appears in every part.",
    )
    column: str | None = Field(
        default=None,
        description="Use a predefined split: a column whose values are train/validation/test.",
    )

    @model_validator(mode="after")
    def _parts_leave_room_for_training(self) -> SplitConfig:
        if self.validation + self.test >= 0.9:
            raise ValueError(
                f"validation ({self.validation}) + test ({self.test}) must leave at least 10% "
                "of the rows for training"
            )
        return self


SEPARATORS_REFUSED = ('"', "'", "\n", "\r")


class DataConfig(StrictModel):
    """Where the rows come from and how they become model inputs, labels and audit groups.

    For a bundled set (``source: compas``) every field left out takes the bundle's default; for a
    file, ``label`` and either ``text_field`` or ``record_fields`` are needed.
    """

    source: str = Field(description="A bundled set name (compas, adult, ...) or a file path.")
    format: Literal["csv", "jsonl", "parquet"] | None = None
    encoding: str = "utf-8"
    separator: str | None = Field(
        default=None,
        description="The character between the fields of a CSV; None detects it from the first "
        "lines (comma, tab, semicolon or pipe).",
    )
    id_field: str | None = None
    text_field: str | None = None
    text_pair_field: str | None = None
    record_fields: list[str] | None = None
    field_names: dict[str, str] = Field(default_factory=dict)
    value_names: dict[str, dict[str, str]] = Field(default_factory=dict)
    label: str | None = None
    label_names: list[str] | None = None
    sensitive: list[str] = Field(default_factory=list)
    include_sensitive_in_text: bool = False
    groups: list[str] | None = None
    keep_columns: list[str] = Field(default_factory=list)
    forbidden_fields: list[str] = Field(default_factory=list)
    min_group_size: Annotated[int, Field(ge=1)] = 30
    sample: Annotated[int, Field(ge=2)] | None = None
    extra_train_source: str | None = None
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unused(handler(self), self, ("separator",))

    @field_validator("separator", mode="before")
    @classmethod
    def _tab_by_name(cls, value: Any) -> Any:
        """'tab' and a typed backslash-t mean the tab character, which is awkward to write."""
        return "\t" if isinstance(value, str) and value.lower() in ("tab", "\\t") else value

    @field_validator("separator")
    @classmethod
    def _one_separator_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in SEPARATORS_REFUSED):
            raise ValueError(
                "separator must be one character such as ',' ';' '|', or tab; not a quote or a "
                "line break"
            )
        return value

    @field_validator("label_names", mode="before")
    @classmethod
    def _label_names_as_text(cls, value: Any) -> Any:
        """Numbers become their text (0 -> '0') so `label_names: [0, 1]` means what it says;
        YAML's unquoted yes/no/true/false are booleans, and guessing their spelling would
        silently match nothing in the data, so they are refused with the fix."""
        if not isinstance(value, list):
            return value
        names = []
        for item in value:
            if isinstance(item, bool):
                raise ValueError(
                    f"{item!r} is a YAML boolean (unquoted yes/no/true/false/on/off): quote the "
                    "label names, e.g. label_names: ['no', 'yes']"
                )
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            names.append(str(item) if isinstance(item, int | float) else item)
        return names

    @field_validator("label_names")
    @classmethod
    def _distinct_label_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if len(value) < 2:
            raise ValueError("a classifier needs at least two label names")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"label names must be distinct; repeated: {repeated}")
        return value

    @model_validator(mode="after")
    def _text_from_one_place(self) -> DataConfig:
        if self.text_field and self.record_fields:
            raise ValueError(
                "give either text_field (text data) or record_fields (tables), not both"
            )
        if self.text_pair_field and not self.text_field:
            raise ValueError("text_pair_field needs text_field (the first text of the pair)")
        return self

    @property
    def audit_groups(self) -> list[str]:
        """Group columns kept for auditing: the declared groups, else the sensitive attributes."""
        return list(self.groups) if self.groups is not None else list(self.sensitive)


class ModelConfig(StrictModel):
    """Which pretrained model to fine-tune."""

    name: str = Field(
        default="default",
        description="'default' (bundled all-MiniLM-L6-v2), a local model directory, or a hub id.",
    )
    max_length: Annotated[int, Field(ge=8, le=8192)] = 128


class EarlyStoppingConfig(StrictModel):
    """Stop when the validation metric has not improved for ``patience`` evaluations."""

    metric: Literal["accuracy", "macro_f1", "auroc", "loss", "exact_match", "f1"] = Field(
        default="macro_f1",
        description="accuracy, macro_f1, auroc or loss for classification; exact_match or f1 "
        "(SQuAD) for extractive_qa.",
    )
    patience: Annotated[int, Field(ge=1)] = 2


class LoraConfig(StrictModel):
    """Low-rank adapters through peft; the task head is trained and saved with the adapter."""

    method: Literal["lora"] = "lora"
    r: Annotated[int, Field(ge=1, le=512)] = 8
    alpha: Annotated[int, Field(ge=1)] = 16
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"])
    head_learning_rate: Annotated[float | None, Field(gt=0)] = None
    """The task head starts from random weights while the adapters start at zero change, so the
    head needs a larger step: at one shared rate, a short run's head only learns the class prior
    and every decision is the majority class. None means 10 x ``train.learning_rate``."""

    def head_rate(self, learning_rate: float) -> float:
        return (
            self.head_learning_rate if self.head_learning_rate is not None else 10 * learning_rate
        )


class FairnessConfig(StrictModel):
    """Bias mitigation during or after training; needs a sensitive attribute in the data.

    ``reweighing`` weights examples so label and group are independent (Kamiran & Calders 2012);
    ``penalty`` adds ``lambda`` times a soft demographic-parity or equalized-odds gap, computed on
    each group-balanced batch, to the loss; ``thresholds`` fits per-group decision thresholds on
    the validation part (fairlearn's ThresholdOptimizer) and applies them wherever the run
    predicts, which needs the group at prediction time (forbidden in some jurisdictions).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    method: Literal["reweighing", "penalty", "thresholds"]
    attribute: str | None = Field(
        default=None,
        description="The sensitive column to mitigate for; default: the first of data.sensitive.",
    )
    constraint: Literal["demographic_parity", "equalized_odds"] = Field(
        default="equalized_odds",
        description="The gap the penalty or the thresholds close.",
    )
    lambda_: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=1.0, alias="lambda", description="Weight of the penalty term (penalty only)."
    )


MAX_EPSILON = 1000.0
"""Largest privacy budget accepted: beyond it DP-SGD only adds cost (and the PRV accountant, which
works on a grid over the privacy-loss domain, takes minutes to answer)."""


class PrivacyConfig(StrictModel):
    """Differentially private fine-tuning (DP-SGD through Opacus).

    Give ``epsilon`` (the noise multiplier is solved for it over the whole run) or
    ``noise_multiplier`` (epsilon is then reported); ``epsilon: .inf`` switches privacy off,
    which lets a sweep include the non-private run.
    """

    # JSON has no infinity; 'Infinity' survives the run directory's config.yaml round trip.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    epsilon: Annotated[float, Field(gt=0)] | None = None
    delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    # Zero noise is no privacy at all (epsilon would be infinite): `epsilon: .inf` says that.
    noise_multiplier: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    max_grad_norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        default=1.0, description="Per-example gradient clipping bound C."
    )
    accountant: Literal["rdp", "prv"] = "prv"
    freeze_embeddings: bool = Field(
        default=True,
        description="Keep the word-embedding table at its pretrained values: it is half of "
        "MiniLM's weights, each example touches ~50 of its 30k rows, and its per-example "
        "gradients are what makes a DP step 3x slower; frozen, the noise also spreads over half "
        "as many weights.",
    )
    clipping: Literal["book_keeping", "per_sample", "ghost"] = Field(
        default="book_keeping",
        description="book_keeping (ethos's own) computes each example's gradient norm without "
        "materialising the gradient (ghost norms) and the clipped sum in one weight-gradient pass "
        "(Bu et al. 2023): about the cost of a non-private step; per_sample (Opacus) materialises "
        "each example's gradient; ghost (Opacus fast gradient clipping) computes only their "
        "norms, trading a second backward pass for memory.",
    )

    @model_validator(mode="after")
    def _one_way_to_set_the_noise(self) -> PrivacyConfig:
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of epsilon (target) or noise_multiplier")
        if self.epsilon is not None and MAX_EPSILON < self.epsilon < float("inf"):
            raise ValueError(
                f"epsilon {self.epsilon:g} is above {MAX_EPSILON:g}, where the guarantee means "
                "nothing (and the accountants lose precision); use epsilon: .inf to train without "
                "privacy"
            )
        return self

    @property
    def enabled(self) -> bool:
        """False for ``epsilon: .inf``: the run is trained without privacy."""
        return self.epsilon is None or self.epsilon != float("inf")


MAX_CANARIES = 100_000
"""Most canaries a run may hold: the audit scores each one, and a real bound needs hundreds to
thousands (Steinke, Nasr & Jagielski 2023), not millions."""


class CanaryConfig(StrictModel):
    """Canaries for the one-run privacy audit (the audit's ``privacy.dp_audit`` section).

    ``count`` crafted records (random words from the model's vocabulary, each with a uniformly
    random label) are drawn, and each joins the *training* rows independently with probability
    1/2; the audit then bounds epsilon from below by how well the trained model tells the
    included canaries from the excluded ones (Steinke, Nasr & Jagielski 2023). Canaries never
    enter validation, test, the baselines or any other audit. Private and non-private runs alike.
    """

    count: Annotated[int, Field(ge=2, le=MAX_CANARIES, strict=True)] = Field(
        description="Canaries drawn (m); about half are trained on. At most the training rows."
    )
    seed: int | None = Field(
        default=None,
        description="Seed of the canaries' words, labels and inclusion coins; None: the run's "
        "seed.",
    )


class AdversarialConfig(StrictModel):
    """Robustness training: perturbed copies of training texts, and/or embedding-space attacks.

    ``augment`` names the audit's perturbation families (typos, case, ...); each epoch a
    ``fraction`` of the training texts is replaced by a perturbed copy. ``embedding`` adds the
    loss on an FGM (one step) or PGD (``steps`` projected steps) perturbation of the token
    embeddings of L2 norm ``epsilon`` per example.
    """

    augment: list[str] = Field(default_factory=list)
    fraction: Fraction = 0.5
    embedding: Literal["none", "fgm", "pgd"] = "none"
    epsilon: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    steps: Annotated[int, Field(ge=1, le=20)] = 3
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        default=1.0, description="Weight of the adversarial loss next to the clean loss."
    )


class TrainConfig(StrictModel):
    """Optimisation settings for the one training loop (AdamW, linear warm-up and decay)."""

    epochs: Annotated[float, Field(gt=0)] = 3.0
    batch_size: Annotated[int, Field(ge=1)] = 32
    eval_batch_size: Annotated[int, Field(ge=1)] = 128
    learning_rate: Annotated[float, Field(gt=0)] = 5e-5
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.06
    gradient_accumulation_steps: Annotated[int, Field(ge=1)] = 1
    max_grad_norm: Annotated[float, Field(gt=0)] | None = 1.0
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    early_stopping: EarlyStoppingConfig | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="auto: bf16/fp16 autocast where the hardware supports it."
    )
    group_by_length: bool = Field(
        default=True, description="Batch texts of similar length together to cut padding."
    )
    max_steps: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="Stop after this many optimizer steps (smoke tests). 0: no training at "
        "all; the starting weights (a parent run's model/ as model.name) are evaluated and "
        "post-processed as they are, e.g. to fit per-group thresholds to a trained model.",
    )
    l2_to_start: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None,
        description="Weight of an L2 pull toward the weights training started from: a child "
        "retrained from its parent on feedback stays near the parent, so it forgets less "
        "(`ethos retrain --l2-to-parent`). None or 0: no pull.",
    )
    peft: LoraConfig | None = None
    fairness: FairnessConfig | None = None
    privacy: PrivacyConfig | None = None
    adversarial: AdversarialConfig | None = None
    canaries: CanaryConfig | None = Field(
        default=None,
        description="Canary records for the one-run empirical privacy audit (privacy.dp_audit).",
    )
    keep_checkpoints: bool = Field(
        default=False,
        description="Keep the per-epoch checkpoints after a run finishes (they are deleted by "
        "default: each holds the model and optimizer state, several times the model's size).",
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unused(handler(self), self, ("canaries",))


class QAConfig(StrictModel):
    """Extractive QA windows and answer decoding."""

    doc_stride: Annotated[int, Field(ge=0)] = Field(
        default=48, description="Context tokens shared by consecutive windows of a long context."
    )
    max_answer_tokens: Annotated[int, Field(ge=1)] = 30
    n_best: Annotated[int, Field(ge=1)] = 20


class ChoicesConfig(StrictModel):
    """Multiple-choice questions (``task: multiple_choice``): the columns of a question.

    Each option is scored as ``context [SEP] question option``; the label is the index of the
    right option (``data.label``, default ``label``). Leaving the context out
    (``context_field: null``) gives the BBQ paper's question-only baseline: what the question
    and options alone give away.
    """

    context_field: str | None = "context"
    question_field: str = "question"
    option_fields: list[str] | None = Field(
        default=None,
        description="The option columns in order; None: option_0, option_1, ... as found.",
    )

    @field_validator("option_fields")
    @classmethod
    def _at_least_two(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) < 2:
            raise ValueError("a multiple-choice question needs at least two options")
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"option fields must be distinct; got {value}")
        return value


MAX_NEW_TOKENS = 4096
"""Most tokens one generation may add: beyond it a request holds a worker for minutes."""


class GenerationConfig(StrictModel):
    """How a causal LM generates, for the audits and as ``POST /v1/generate``'s defaults.

    ``temperature: 0`` is greedy decoding (the same prompt gives the same text); above 0 tokens
    are sampled, from the smallest set of tokens whose probability reaches ``top_p``.
    """

    max_new_tokens: Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS)] = 64
    temperature: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = 0.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 1.0


class SecretCanaryConfig(StrictModel):
    """Planted secrets for the memorisation audit (Carlini et al. 2019, "The Secret Sharer").

    ``count`` canaries, each the pair ``"{prefix} {k}"`` -> a random ``digits``-digit secret,
    join the training pairs ``repeats`` times each; as many more of the same form are drawn and
    never trained on, as controls. The audit ranks each secret among all (or, for more than
    10,000, sampled) candidates by the model's likelihood: a memorised secret is near the top
    (exposure near log2 of the candidate count), a control near chance (about 1.44 bits).
    """

    count: Annotated[int, Field(ge=1, le=64, strict=True)] = 4
    digits: Annotated[int, Field(ge=2, le=12, strict=True)] = 6
    repeats: Annotated[int, Field(ge=1, le=1000, strict=True)] = 4
    prefix: Annotated[str, Field(min_length=1, max_length=200)] = "my pin is"
    separator: str = Field(
        default="",
        max_length=3,
        description="Between the secret's digits: '' for subword tokenizers; ' ' for a "
        "word-level one, whose vocabulary has each digit but not each number.",
    )
    seed: int | None = Field(default=None, description="None: the run's seed.")


class CausalLMConfig(StrictModel):
    """Supervised fine-tuning of a causal LM (``task: causal_lm``) on prompt/response pairs.

    The loss is on the response tokens only: the prompt is what the user says, and learning to
    say it back is not the task. When the tokenizer has a chat template the pair is framed by
    it (a user turn, then the assistant's), as the model will be prompted when served.
    ``adapter: lora`` (the default) trains low-rank adapters (``train.peft`` tunes them);
    ``full`` trains every weight.
    """

    prompt_field: str = "prompt"
    response_field: str = "response"
    chat_template: Literal["auto", "never"] = Field(
        default="auto",
        description="auto: frame pairs with the tokenizer's chat template when it has one.",
    )
    adapter: Literal["lora", "full"] = "lora"
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    canaries: SecretCanaryConfig | None = Field(
        default=None, description="Planted secrets for the memorisation audit."
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unused(handler(self), self, ("canaries",))


class GroundingConfig(StrictModel):
    """Grounded answering: the run's reader answers from passages retrieved from a knowledge base.

    The run is a classifier over (question, passage) pairs, trained on each question's gold
    passage; at answer time the passage is the best one retrieved. The knowledge base's identity
    is recorded in the manifest and the ledger, and serving refuses any other
    (:mod:`ethos.models.grounded`). The abstention threshold is calibrated on the validation
    questions: at least ``coverage`` of in-domain questions are answered (split conformal).
    A question's gold passage is the knowledge-base passage whose id is the question's row id
    (``data.id_field``), as for the bundled pubmedqa set and knowledge base."""

    knowledge_base: str = Field(
        description="The folder `ethos kb build` wrote (relative paths from the working "
        "directory, like output_dir)."
    )
    build_from: str | None = Field(
        default=None,
        description="A passage source (pubmedqa, a table, a folder of .txt files) to build the "
        "knowledge base from, with the default chunking, PII masked and the bundled encoder, "
        "when the folder does not exist yet.",
    )
    top_k: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5, description="Passages retrieved and cited per question."
    )
    coverage: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        default=0.95,
        description="Share of in-domain questions answered; the rest abstain. Calibrated on the "
        "validation questions' best retrieval scores.",
    )
    out_of_domain: str | None = Field(
        default=None,
        description="Questions the knowledge base cannot answer, which the audit expects to "
        "abstain: a bundled set's name (squad-tiny) or a table with a `question` column.",
    )


class IntendedUseConfig(StrictModel):
    """What the model is for, declared by the people who train it; the model card prints it.

    ethos can derive what a model predicts from the data, but not what it is *for* or who should
    use it, so without this section the card marks its intended use as derived, not declared.
    A plain string is taken as ``purpose``.
    """

    purpose: Statement = Field(description="The decision or task the model supports.")
    users: Statement | None = Field(
        default=None, description="The primary intended users (e.g. credit officers)."
    )
    out_of_scope: list[Statement] = Field(
        default_factory=list, description="Uses the model is not meant for."
    )

    @model_validator(mode="before")
    @classmethod
    def _string_is_the_purpose(cls, value: Any) -> Any:
        return {"purpose": value} if isinstance(value, str) else value

    @field_validator("purpose", "users", "out_of_scope", mode="after")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(text is not None and not text.strip() for text in texts):
            raise ValueError("must not be blank")
        return value


class RunConfig(StrictModel):
    """One run: data, model, task, training and the ethics policy it is judged by."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: Literal["classification", "extractive_qa", "multiple_choice", "causal_lm"] = (
        "classification"
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    qa: QAConfig = Field(default_factory=QAConfig)
    choices: ChoicesConfig | None = Field(
        default=None, description="task: multiple_choice: the columns of a question."
    )
    causal_lm: CausalLMConfig | None = Field(
        default=None, description="task: causal_lm: the prompt/response columns and adapter."
    )
    grounding: GroundingConfig | None = Field(
        default=None,
        description="task: classification over (question, passage): answer from a knowledge "
        "base's retrieved passages, cite them, abstain when none is close.",
    )
    policy: str | None = Field(
        default=None,
        description="The ethics policy the run is gated by: a bundled name (medical, "
        "criminal-justice, credit) or a YAML file path.",
    )
    intended_use: IntendedUseConfig | None = Field(
        default=None,
        description="What the model is for and who should use it (printed in the model card).",
    )
    seed: int = 42
    output_dir: Path = Path("runs")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unused(
            handler(self), self, ("intended_use", "choices", "causal_lm", "grounding")
        )

    @model_validator(mode="after")
    def _task_sections_match_the_task(self) -> RunConfig:
        for section, task in (("choices", "multiple_choice"), ("causal_lm", "causal_lm")):
            if getattr(self, section) is not None and self.task != task:
                raise ValueError(
                    f"the {section} section is for task: {task}, and this run's task is {self.task}"
                )
        if self.grounding is not None and self.task != "classification":
            raise ValueError(
                "the grounding section is for task: classification (a reader over question + "
                f"passage pairs), and this run's task is {self.task}"
            )
        return self

    @property
    def choice_columns(self) -> ChoicesConfig:
        """The multiple-choice columns (the defaults when the section is left out)."""
        return self.choices or ChoicesConfig()

    @property
    def causal(self) -> CausalLMConfig:
        """The causal-LM settings (the defaults when the section is left out)."""
        return self.causal_lm or CausalLMConfig()


def looks_like_path(source: str) -> bool:
    """Bundled set names are bare words; anything with a suffix or a separator is a file."""
    return "/" in source or "\\" in source or bool(Path(source).suffix)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run config; relative file paths in it are taken from its directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist" if not path.exists() else f"{path} is not a file",
            hint="create one with `ethos init` or pass the path of an existing YAML config",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config {path} is not UTF-8 text (bad byte at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None
    raw = parse_yaml_mapping(text, path)
    config = validate_config(raw, path, text)
    return resolve_relative_paths(config, path.parent)


def parse_yaml_mapping(text: str, path: Path) -> dict[str, Any]:
    """YAML text to a mapping, with the line of any syntax error in the message."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"config {path} is not valid YAML{where}: {problem}",
            hint="check indentation and quoting on that line",
        ) from None
    if raw is None:
        raise ConfigError(f"config {path} is empty", hint="start from `ethos init`")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config {path} must be a mapping of sections (data:, model:, ...), "
            f"not a {type(raw).__name__}",
            hint="start from `ethos init`",
        )
    return raw


def validate_config(raw: dict[str, Any], path: Path, text: str = "") -> RunConfig:
    """Validate a parsed mapping, rewriting pydantic's errors into one readable message."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe_error(err, text) for err in exc.errors()]
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"config {path} is invalid ({len(problems)} problem{'s' * (len(problems) > 1)}):\n"
            f"{listing}"
        ) from None


def _describe_error(err: Any, text: str) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    line = _line_of(text, loc)
    where = f"{key} (line {line})" if line else key
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return f"{where}: unknown key{guess} expected one of: {', '.join(allowed)}"
    if kind == "missing":
        return f"{where}: required key is missing"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, dict) else "a mapping"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{where}: {err['msg']} (got {shown})"


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    """Field names of the config section at ``parent``, for 'expected one of' messages."""
    model: type[BaseModel] | None = RunConfig
    for part in parent:
        assert model is not None
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    if model is None:
        return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest key of ``loc`` present in the YAML text, if any."""
    if not text:
        return None
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def resolve_relative_paths(config: RunConfig, base: Path) -> RunConfig:
    """Make file paths in ``config`` absolute, taking relative ones from ``base``."""

    def resolve(source: str | None) -> str | None:
        if source is None or not looks_like_path(source) or Path(source).is_absolute():
            return source
        return str((base / source).resolve())

    data = config.data.model_copy(
        update={
            "source": resolve(config.data.source),
            "extra_train_source": resolve(config.data.extra_train_source),
        }
    )
    updates: dict[str, Any] = {"data": data}
    if config.policy is not None:
        updates["policy"] = resolve(config.policy)
    return config.model_copy(update=updates)
