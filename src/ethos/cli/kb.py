"""`ethos kb ...`: build a knowledge base from passages, and search one.

Only typer is imported at module level; torch, transformers and Presidio load when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ethos.cli.output import console
from ethos.errors import EthosError

app = typer.Typer(
    help="Knowledge bases for retrieval: build one from passages (embedded, PII-scrubbed, "
    "fingerprinted), search it, and ask a grounded run's questions.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("build")
def build_command(
    source: str = typer.Argument(
        ...,
        metavar="SOURCE",
        help="A CSV, JSONL or Parquet table (one passage a row), a folder of .txt files (one "
        "passage a file), or 'pubmedqa' (the bundled PubMedQA abstracts).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write (must not exist)."),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="Encoder: default (the bundled all-MiniLM-L6-v2), a Hugging Face model folder or "
        "a run directory.",
    ),
    id_field: str = typer.Option("id", "--id-field", help="A table's passage id column."),
    text_field: str = typer.Option("text", "--text-field", help="A table's passage text column."),
    chunk_words: int = typer.Option(
        96, "--chunk-words", help="Words per chunk (with --no-chunking: the longest passage)."
    ),
    overlap: int = typer.Option(24, "--overlap", help="Words shared by consecutive chunks."),
    chunking: bool = typer.Option(
        True,
        "--chunking/--no-chunking",
        help="Cut passages into overlapping word windows; --no-chunking refuses passages longer "
        "than --chunk-words.",
    ),
    keep_pii: bool = typer.Option(
        False, "--keep-pii", help="Index the texts as they are, without masking personal data."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Texts encoded per batch."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Embed passages (chunked, PII-masked) into a new knowledge base folder."""
    from ethos.data.passages import Chunking, load_passages
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import build_kb, chunking_of

    if output.exists():
        raise EthosError(f"{output} already exists", hint="choose another output folder")
    settings = Chunking(enabled=chunking, words=chunk_words, overlap=overlap)
    passages = load_passages(
        source,
        id_field=id_field,
        text_field=text_field,
        chunking=settings,
        scrub_pii=not keep_pii,
        progress=not quiet,
    )
    encoder = SentenceEncoder.load(model)
    kb = build_kb(passages, encoder, batch_size=batch_size, progress=not quiet)
    kb.save(output)
    counts = kb.info["counts"]
    pii = kb.info["pii"]
    if not pii.get("scrubbed"):
        masked = "kept as it is (--keep-pii)"
    elif pii["by_entity"]:
        entities = ", ".join(f"{name} {n}" for name, n in pii["by_entity"].items())
        masked = f"masked in {pii['passages_masked']} passages ({entities})"
    else:
        masked = "none found"
    lines = [
        f"wrote {output}",
        f"  passages: {counts['passages']} -> {counts['chunks']} chunks "
        f"({chunking_of(kb)}); {counts['truncated_chunks']} chunks truncated by the encoder",
        f"  pii: {masked}",
        f"  encoder: {encoder.identity.short()}",
        f"  fingerprint: {kb.fingerprint}",
        f"  kb_sha256: {kb.sha256}",
        f"  encoding: {kb.info['encoding_seconds']} s",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("search")
def search_command(
    kb_dir: Path = typer.Argument(..., metavar="KB_DIR", help="A folder `ethos kb build` wrote."),
    query: str = typer.Argument(..., metavar="QUERY", help="The text to search for."),
    k: int = typer.Option(5, "-k", "--top", help="How many chunks to show."),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Query encoder (default: the one that built the knowledge base); it must have the "
        "knowledge base's weights.",
    ),
    width: int = typer.Option(240, "--width", help="Characters of each chunk's text to show."),
) -> None:
    """Show the chunks of a knowledge base most similar to a query."""
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import KnowledgeBase

    kb = KnowledgeBase.load(kb_dir)
    encoder_name = model or kb.encoder.name
    if model is None and encoder_name != "default" and not Path(encoder_name).exists():
        raise EthosError(
            f"the encoder that built {kb_dir} ({encoder_name}) is not on this machine",
            hint="pass --model with a copy of that encoder",
        )
    encoder = SentenceEncoder.load(encoder_name)
    kb.check_encoder(encoder)
    (hits,) = kb.search_texts([query], encoder, k)
    for hit in hits:
        text = " ".join(hit.text.split())
        shown = text if len(text) <= width else text[: max(width - 1, 0)] + "…"
        console.print(
            f"{hit.rank:>3}  {hit.score:.3f}  {hit.id}  [{hit.source}]\n     {shown}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command("ask")
def ask_command(
    run_dir: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="A grounded run (a config with a grounding: section)."
    ),
    questions: list[str] = typer.Argument(..., metavar="QUESTION...", help="Questions to answer."),
    knowledge_base: Path | None = typer.Option(
        None,
        "--knowledge-base",
        help="Where the run's knowledge base is now, if it moved; it must still be the one the "
        "run recorded (its kb_sha256).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the answers as JSON."),
    width: int = typer.Option(200, "--width", help="Characters of each cited chunk to show."),
) -> None:
    """Answer questions from a grounded run's knowledge base, citing passages, or abstain."""
    import json

    from ethos.models.grounded import ABSTAIN, GroundedAnswerer
    from ethos.rundir import RunDir

    cleaned = [" ".join(q.split()) for q in questions]
    if not all(cleaned):
        raise EthosError("a question is empty", hint="pass each question as one quoted argument")
    answerer = GroundedAnswerer.from_run(RunDir.open(run_dir), knowledge_base=knowledge_base)
    answers = answerer.answer(cleaned)
    if as_json:
        document = [{"question": q, **a.to_json()} for q, a in zip(cleaned, answers, strict=True)]
        console.print_json(json.dumps(document))
        return
    for question, answer in zip(cleaned, answers, strict=True):
        verdict = (
            f"{ABSTAIN} (best score {answer.score:.3f} < threshold {answer.threshold:.3f})"
            if answer.abstained
            else f"{answer.answer} (p={max((answer.probabilities or {}).values()):.2f}; read "
            f"{answer.read_passage}, score {answer.score:.3f})"
        )
        lines = [f"Q: {question}", f"A: {verdict}"]
        for citation in answer.citations:
            text = " ".join(citation.text.split())
            shown = text if len(text) <= width else text[: max(width - 1, 0)] + "…"
            lines.append(f"  [{citation.rank}] {citation.score:.3f} {citation.chunk_id}: {shown}")
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
