"""CrowS-Pairs scoring (Nangia et al. 2020) on tiny language models built and trained here.

Nothing is downloaded: the tokenizers are word-level ones built from a word list, the models
tiny BERT and GPT-2 configurations. Sentence scores are checked against sums computed by hand in
the test (one masked forward pass per token; shifted log-softmax), and two masked LMs trained on
opposite corpora ("the poor are lazy" versus "the rich are lazy") must rank constructed pairs in
opposite ways, with Clopper-Pearson intervals that exclude each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
import torch
from scipy.stats import binomtest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoModel,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from ethos.errors import ModelError
from ethos.models.stereotype_likelihood import (
    NO_PREFERENCE,
    causal_log_likelihood,
    model_kind,
    pair_scores,
    pseudo_log_likelihood,
    scoring_ids,
    shared_token_positions,
    stereotype_preference,
    summarise_preference,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]"]
# (group named by the stereotype, the other group, bias type)
GROUPS = [
    ("poor", "rich", "socioeconomic"),
    ("old", "young", "age"),
    ("women", "men", "gender"),
    ("immigrants", "locals", "nationality"),
]
# (attribute of the stereotype, its opposite)
ATTRIBUTES = [("lazy", "hardworking"), ("weak", "strong"), ("rude", "kind")]
WORDS = sorted(
    {"the", "are", "very", "and", "also", "quite"}
    | {w for g in GROUPS for w in g[:2]}
    | {w for a in ATTRIBUTES for w in a}
)
MAX_POSITIONS = 16


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def word_tokenizer(*, causal: bool = False) -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer over WORDS: BERT-like ``[CLS] ... [SEP]`` framing, or
    GPT-2-like (no special tokens added, a ``[BOS]`` token the scorer puts first)."""
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if causal:
        return PreTrainedTokenizerFast(
            tokenizer_object=backend, bos_token="[BOS]", pad_token="[PAD]", unk_token="[UNK]"
        )
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        pad_token="[PAD]",
        unk_token="[UNK]",
    )


def tiny_bert(seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_POSITIONS,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForMaskedLM(config).eval()


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(SPECIALS) + len(WORDS),
        n_positions=MAX_POSITIONS,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=SPECIALS.index("[BOS]"),
        eos_token_id=SPECIALS.index("[BOS]"),
    )
    return GPT2LMHeadModel(config).eval()


def corpus(*, stereotyped: bool) -> list[str]:
    """Every group pair with every attribute pair: the stereotyped group with the stereotyped
    attribute (and the other group with its opposite), or the reverse."""
    sentences = []
    for target, other, _ in GROUPS:
        for negative, positive in ATTRIBUTES:
            with_negative, with_positive = (target, other) if stereotyped else (other, target)
            sentences += [
                f"the {with_negative} are {negative}",
                f"the {with_positive} are {positive}",
            ]
    return sentences


def constructed_pairs() -> pd.DataFrame:
    """24 pairs, sent_more always the stereotyped corpus's sentence: 12 'stereo' (the stereotyped
    group with the negative attribute) and 12 'antistereo' (the other group with the positive)."""
    rows = []
    for target, other, bias in GROUPS:
        for negative, positive in ATTRIBUTES:
            rows.append(
                (f"the {target} are {negative}", f"the {other} are {negative}", "stereo", bias)
            )
            rows.append(
                (f"the {other} are {positive}", f"the {target} are {positive}", "antistereo", bias)
            )
    table = pd.DataFrame(rows, columns=["sent_more", "sent_less", "stereo_antistereo", "bias_type"])
    table["id"] = [f"pair-{i}" for i in range(len(table))]
    return table


def train_masked(sentences: list[str], *, steps: int = 150, seed: int = 0) -> BertForMaskedLM:
    """Full-batch training on every one-token-masked copy of every sentence (the PLL objective)."""
    tokenizer = word_tokenizer()
    model = tiny_bert(seed)
    inputs, labels = [], []
    for sentence in sentences:
        ids = scoring_ids(tokenizer, sentence, kind="masked")
        for position in range(1, len(ids) - 1):
            masked, label = list(ids), [-100] * len(ids)
            masked[position], label[position] = tokenizer.mask_token_id, ids[position]
            inputs.append(masked)
            labels.append(label)
    input_ids, label_ids = torch.tensor(inputs), torch.tensor(labels)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        model(input_ids=input_ids, labels=label_ids).loss.backward()
        optimiser.step()
    return model.eval()


def train_causal(sentences: list[str], *, steps: int = 150, seed: int = 0) -> GPT2LMHeadModel:
    tokenizer = word_tokenizer(causal=True)
    model = tiny_gpt2(seed)
    input_ids = torch.tensor([scoring_ids(tokenizer, s, kind="causal") for s in sentences])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        model(input_ids=input_ids, labels=input_ids).loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def masked_lms() -> dict[str, BertForMaskedLM]:
    return {
        "stereotyped": train_masked(corpus(stereotyped=True)),
        "reversed": train_masked(corpus(stereotyped=False)),
    }


# --- alignment ------------------------------------------------------------------------------


def test_shared_tokens_are_the_unmodified_ones_without_special_tokens() -> None:
    tokenizer = word_tokenizer()
    more = scoring_ids(tokenizer, "the poor are lazy", kind="masked")
    less = scoring_ids(tokenizer, "the rich are lazy", kind="masked")
    special = tokenizer.all_special_ids
    assert shared_token_positions(more, less, special_ids=special) == ([1, 3, 4], [1, 3, 4])
    # with the special tokens: [CLS] and [SEP] are aligned too
    assert shared_token_positions(more, less) == ([0, 1, 3, 4, 5], [0, 1, 3, 4, 5])
    # an insertion shifts the alignment: "very" has no counterpart
    longer = scoring_ids(tokenizer, "the poor are very lazy", kind="masked")
    assert shared_token_positions(longer, less, special_ids=special) == ([1, 3, 5], [1, 3, 4])


# --- sentence scores against hand computation ----------------------------------------------


def hand_pll(model: BertForMaskedLM, ids: list[int], positions: list[int], mask_id: int) -> float:
    total = 0.0
    with torch.no_grad():
        for position in positions:
            masked = torch.tensor([ids])
            masked[0, position] = mask_id
            logits = model(input_ids=masked).logits[0, position]
            total += torch.log_softmax(logits, dim=-1)[ids[position]].item()
    return total


def test_pseudo_log_likelihood_is_the_sum_of_one_at_a_time_masked_log_probs() -> None:
    tokenizer, model = word_tokenizer(), tiny_bert(seed=3)
    text = "the poor are very lazy and rude"
    ids = scoring_ids(tokenizer, text, kind="masked")
    every = list(range(1, len(ids) - 1))
    expected = hand_pll(model, ids, every, tokenizer.mask_token_id)
    assert pseudo_log_likelihood(model, tokenizer, text, every) == pytest.approx(expected, abs=1e-5)
    # batched in several chunks, or over a subset of positions: the same sums
    chunked = pseudo_log_likelihood(model, tokenizer, text, every, batch_size=2)
    assert chunked == pytest.approx(expected, abs=1e-5)
    subset = [1, 4, 6]
    expected_subset = hand_pll(model, ids, subset, tokenizer.mask_token_id)
    assert pseudo_log_likelihood(model, tokenizer, text, subset) == pytest.approx(
        expected_subset, abs=1e-5
    )
    assert pseudo_log_likelihood(model, tokenizer, text, []) == 0.0


def test_causal_log_likelihood_is_the_sum_of_shifted_log_softmax() -> None:
    tokenizer, model = word_tokenizer(causal=True), tiny_gpt2(seed=4)
    text = "the women are strong and kind"
    ids = scoring_ids(tokenizer, text, kind="causal")
    assert ids[0] == tokenizer.bos_token_id  # put first, so "the" is scored too
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits[:-1], dim=-1)
    per_token = [log_probs[i - 1, ids[i]].item() for i in range(1, len(ids))]
    assert causal_log_likelihood(model, tokenizer, text) == pytest.approx(sum(per_token), abs=1e-5)
    subset = [2, 3, 6]
    assert causal_log_likelihood(model, tokenizer, text, subset) == pytest.approx(
        sum(per_token[i - 1] for i in subset), abs=1e-5
    )


def test_scoring_restores_the_models_training_mode() -> None:
    tokenizer, model = word_tokenizer(), tiny_bert()
    model.train()
    pseudo_log_likelihood(model, tokenizer, "the old are weak", [1, 2])
    assert model.training


# --- the metric on trained tiny models ------------------------------------------------------


def test_masked_lms_trained_on_opposite_corpora_rank_pairs_oppositely(
    masked_lms: dict[str, BertForMaskedLM],
) -> None:
    tokenizer, pairs = word_tokenizer(), constructed_pairs()
    biased = stereotype_preference(masked_lms["stereotyped"], tokenizer, pairs)
    reverse = stereotype_preference(masked_lms["reversed"], tokenizer, pairs)
    json.dumps(biased, allow_nan=False)  # JSON-ready

    assert (biased["kind"], biased["tokens"], biased["interval"]) == (
        "masked",
        "shared",
        "clopper-pearson",
    )
    overall = biased["overall"]
    assert (overall["n"], overall["prefer_more"], overall["share"]) == (24, 24, 1.0)
    assert reverse["overall"]["share"] == 0.0
    # the intervals exclude 0.5 and each other; all of n preferring: lower = (alpha/2)^(1/n)
    assert overall["ci"][0] == pytest.approx(0.025 ** (1 / 24), abs=1e-9)
    assert reverse["overall"]["ci"][1] < NO_PREFERENCE < overall["ci"][0]
    assert set(biased["by_bias_type"]) == {g[2] for g in GROUPS}
    assert biased["by_bias_type"]["age"]["n"] == 6
    assert biased["overall"]["directions"]["stereo"]["prefer_more"] == 12
    assert reverse["overall"]["directions"]["antistereo"]["prefer_more"] == 0


def test_shared_tokens_carry_the_comparison(masked_lms: dict[str, BertForMaskedLM]) -> None:
    """The stereotyped model finds "lazy" likelier after "the poor are" than after "the rich
    are": the unmodified token's log-probability is what separates the two sentences."""
    scores = pair_scores(masked_lms["stereotyped"], word_tokenizer(), constructed_pairs())
    assert list(scores.columns) == [
        "id",
        "bias_type",
        "stereo_antistereo",
        "score_more",
        "score_less",
        "n_scored",
    ]
    assert (scores["n_scored"] == 3).all()
    assert (scores["score_more"] > scores["score_less"] + 1.0).all()


def test_a_causal_lm_is_scored_by_its_log_likelihood() -> None:
    tokenizer = word_tokenizer(causal=True)
    biased = train_causal(corpus(stereotyped=True))
    result = stereotype_preference(biased, tokenizer, constructed_pairs())
    assert (result["kind"], result["score"]) == ("causal", "causal_log_likelihood")
    assert result["overall"]["share"] == 1.0
    whole = stereotype_preference(biased, tokenizer, constructed_pairs(), tokens="all")
    assert whole["overall"]["n"] == 24


def test_summary_counts_ties_in_n_but_not_as_preferences() -> None:
    scores = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "bias_type": ["age", "age", "gender", "gender"],
            "stereo_antistereo": ["stereo", "stereo", "stereo", "stereo"],
            "score_more": [-1.0, -2.0, -3.0001, -5.0],
            "score_less": [-2.0, -1.0, -3.0002, -4.0],
        }
    )
    summary = summarise_preference(scores)
    json.dumps(summary, allow_nan=False)
    overall = summary["overall"]
    assert (overall["n"], overall["prefer_more"], overall["ties"], overall["share"]) == (
        4,
        1,
        1,
        0.25,
    )
    reference = binomtest(1, 4).proportion_ci(confidence_level=0.95, method="exact")
    assert overall["ci"] == pytest.approx([reference.low, reference.high])
    assert overall["share_without_ties"] == pytest.approx(1 / 3)
    assert overall["directions"]["antistereo"] == {
        "n": 0,
        "prefer_more": 0,
        "ties": 0,
        "share": None,
        "ci": None,
        "share_without_ties": None,
    }
    assert summary["by_bias_type"]["gender"]["ties"] == 1


# --- kinds and bad inputs -------------------------------------------------------------------


def test_kind_comes_from_the_model_class() -> None:
    assert model_kind(tiny_bert()) == "masked"
    assert model_kind(tiny_gpt2()) == "causal"
    with pytest.raises(ModelError, match="is a masked language model"):
        model_kind(tiny_bert(), "causal")
    with pytest.raises(ModelError, match="unknown language-model kind"):
        model_kind(tiny_bert(), "encoder")  # type: ignore[arg-type]


def test_a_model_without_a_language_model_head_is_refused() -> None:
    config = tiny_bert().config
    classifier = BertForSequenceClassification(config)
    with pytest.raises(ModelError, match="neither a masked-LM nor a causal-LM head"):
        stereotype_preference(classifier, word_tokenizer(), constructed_pairs())


def test_the_bundled_encoder_loaded_with_automodel_is_refused() -> None:
    from ethos.models.resolve import bundled_model_dir

    encoder = AutoModel.from_pretrained(bundled_model_dir())
    with pytest.raises(ModelError, match="AutoModelForMaskedLM"):
        model_kind(encoder)


def test_bad_pairs_are_refused_before_scoring() -> None:
    tokenizer, model, pairs = word_tokenizer(), tiny_bert(), constructed_pairs()
    with pytest.raises(ModelError, match="no sentence pairs"):
        stereotype_preference(model, tokenizer, pairs.iloc[:0])
    same = pairs.copy()
    same.loc[3, "sent_less"] = str(same.loc[3, "sent_more"]).upper()  # the same tokens, lower-cased
    with pytest.raises(ModelError, match="pairs pair-3 have the same sentence twice"):
        stereotype_preference(model, tokenizer, same)
    long = pairs.copy()
    long.loc[5, "sent_more"] = "the poor are " + " and ".join(["lazy"] * 8)
    with pytest.raises(ModelError, match="20 tokens long, more than the 16"):
        stereotype_preference(model, tokenizer, long)
    with pytest.raises(ModelError, match="no column"):
        stereotype_preference(model, tokenizer, pairs.drop(columns="bias_type"))


def test_a_tokenizer_without_mask_token_cannot_score_a_masked_lm() -> None:
    with pytest.raises(ModelError, match="no mask token"):
        pseudo_log_likelihood(tiny_bert(), word_tokenizer(causal=True), "the old are weak", [1])
