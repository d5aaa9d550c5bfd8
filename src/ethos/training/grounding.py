"""A grounded run's knowledge base at training time: found (or built), checked, calibrated.

Before training, :func:`prepare_knowledge_base` loads the config's knowledge base, or builds it
from ``grounding.build_from`` when the folder does not exist yet, so a missing or damaged
knowledge base fails before an hour of training, not after. After training,
:func:`grounding_manifest` records the knowledge base's identity and calibrates the abstention
threshold on the run's validation questions (:func:`ethos.stats.abstention.conformal_threshold`
over their best passages' similarities): the reader is not needed for that, only retrieval, and
the validation part is the one the model was not fitted on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ethos.config import RunConfig
from ethos.errors import ConfigError
from ethos.models.knowledge_base import KnowledgeBase


def prepare_knowledge_base(config: RunConfig, *, quiet: bool = False) -> KnowledgeBase:
    """The config's knowledge base, built first when it is missing and ``build_from`` says how."""
    grounding = config.grounding
    assert grounding is not None
    if not config.data.text_pair_field:
        raise ConfigError(
            "a grounded run's reader reads a question with a passage, so data.text_pair_field "
            "must name the passage column (the gold passage it is trained on)",
            hint="set data.text_field to the question and data.text_pair_field to the passage",
        )
    path = Path(grounding.knowledge_base).expanduser()
    if path.exists() or grounding.build_from is None:
        if not path.exists():
            raise ConfigError(
                f"grounding.knowledge_base {path} does not exist",
                hint=f"build it first (`ethos kb build SOURCE -o {path}`), or add "
                "grounding.build_from: SOURCE to build it on the first run",
            )
        return KnowledgeBase.load(path)
    from ethos.data.passages import load_passages
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import build_kb

    if not quiet:
        print(
            f"building the knowledge base {path} from {grounding.build_from} "
            "(PII masked, default chunking, bundled encoder) ...",
            file=sys.stderr,
        )
    passages = load_passages(grounding.build_from)
    kb = build_kb(passages, SentenceEncoder.load(), progress=not quiet)
    kb.save(path)
    return KnowledgeBase.load(path)


def grounding_manifest(config: RunConfig, dataset: Any) -> dict[str, Any]:
    """The manifest's ``grounding`` record: the knowledge base, top k, calibrated threshold."""
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.grounded import knowledge_base_record, retrieve
    from ethos.stats.abstention import conformal_threshold

    grounding = config.grounding
    assert grounding is not None
    path = Path(grounding.knowledge_base).expanduser()
    kb = KnowledgeBase.load(path)
    encoder = SentenceEncoder.load(kb.encoder.name)
    kb.check_encoder(encoder)
    calibration = dataset.part("validation")
    if len(calibration) == 0:
        raise ConfigError(
            "a grounded run calibrates its abstention threshold on the validation questions, "
            "and the validation part is empty",
            hint="give data.split.validation a share above 0 (0.15 is typical)",
        )
    questions = [str(t) for t in calibration.texts]
    found = retrieve(kb, encoder.encode(questions).vectors, 1)
    cut = conformal_threshold(found.best_scores, grounding.coverage)
    answered = float((found.best_scores >= cut.threshold).mean())
    return {
        "knowledge_base": knowledge_base_record(kb, path),
        "top_k": grounding.top_k,
        "abstention": {
            **cut.to_json(),
            "score": "cosine similarity of the question and the best chunk of the best passage",
            "calibration_part": "validation",
            "calibration_answered": answered,
        },
    }
