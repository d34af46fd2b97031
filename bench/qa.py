"""Document QA: does the chat answer from the documents, quote the right sentence, and say
"not in the documents" when they do not say?

``python -m bench qa [--levers] [--model KEY]`` — ERT's own QA set (``bench/qa/``: ten short
documents of invented facts, 60 questions: numbers, names, days, durations, units, follow-ups,
hard-wrapped text, numbers in words, paraphrases, French, and 12 the documents do not answer),
indexed into a real collection (MiniLM + FAISS + BM25), answered by a real chat model through
:func:`core.chat.answer_question`, the page's pipeline.

Reported per configuration: retrieval hit@1 / hit@k (the expected file), answers right
(answerable questions whose answer holds an accepted form), evidence right (the top evidence
sentence holds the expected fact, for answered questions; and before the answer, for all),
"not in the documents" right (unanswerable ones), answers that quote the evidence because the
model's draft was refused, first-token time and tokens/s; then answers right per question tag.
``--levers`` adds the default with one lever off at a time, and the seed's settings.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.chat import Answer, DocumentOptions, answer_question, build_messages, prepare_turn
from core.llm.loader import load_llm
from core.llm.registry import load_registry
from core.rag.documents import read_document
from core.rag.embeddings import load_embeddings
from core.rag.store import Collection

import argparse
import statistics
import sys
import tempfile
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import save, table

QA_DIR = Path(__file__).parent / "qa"
SEED_SYSTEM = ("You are a helpful assistant running locally. Answer briefly and accurately. When "
               "document excerpts are given, base the answer on them and name the file you used.")


@dataclass(frozen=True)
class Question:
    question: str
    answer: tuple[str, ...]
    file: str
    evidence: str = ""
    followup_of: int | None = None
    tags: tuple[str, ...] = ("original set",)

    @property
    def answerable(self) -> bool:
        return bool(self.answer)


def load_questions(folder: Path = QA_DIR) -> list[Question]:
    data = tomllib.loads((folder / "questions.toml").read_text(encoding="utf-8"))
    return [Question(q["question"], tuple(q["answer"]), q["file"], q.get("evidence", ""),
                     q.get("followup_of"), tuple(q.get("tags", ["original set"])))
            for q in data["questions"]]


def build_collection(root: Path, embedder: Any, folder: Path = QA_DIR / "docs") -> Collection:
    collection = Collection("qa", root=root)
    for path in sorted([*folder.glob("*.md"), *folder.glob("*.txt")]):
        collection.add_document(read_document(path.name, path.read_bytes()), embedder, save=False)
    collection.save()
    return collection


def is_right(q: Question, answer: Answer) -> bool:
    if not q.answerable:
        return answer.not_in_documents
    text = answer.answer.lower()
    return not answer.not_in_documents and any(form.lower() in text for form in q.answer)


def _seed_answer(llm: Any, q: Question, collection: Collection, embedder: Any,
                 history: list[dict[str, str]]) -> Answer:
    """The chat as it was: dense top-3, seed prompt with history, sampling, 800 tokens, no guard."""
    from core.chat import finish_turn, stream_answer
    from core.llm.generate import GenerationOptions, GenerationStats

    options = DocumentOptions(hybrid=False, rewrite=False, guard=False, grounding=False)
    turn = prepare_turn(q.question, collection, embedder, history, options)
    hits = turn.hits
    messages = build_messages(q.question, [], history)
    excerpts = "\n\n".join(f"[{h.chunk.source}, chunk {h.chunk.index}]\n{h.chunk.text}"
                           for h in hits)
    messages[0]["content"] = SEED_SYSTEM
    if hits:
        messages[-1]["content"] = f"Document excerpts:\n{excerpts}\n\nQuestion: {q.question}"
    turn.messages = messages
    turn.options = GenerationOptions(max_new_tokens=800, temperature=0.3, top_p=0.9,
                                     repetition_penalty=1.1)
    stats = GenerationStats()
    text = "".join(stream_answer(llm, turn, stats=stats))
    answer = finish_turn(turn, text, embedder, grounding=False)
    answer.timing = {"first_token_seconds": stats.extra.get("first_token_seconds", 0.0),
                     "decode_tokens_per_second": float(stats.extra.get("decode_tokens_per_second")
                                                       or stats.tokens_per_second)}
    answer.tokens = {"generated": stats.new_tokens}
    return answer


def run_config(name: str, llm: Any, questions: list[Question], collection: Collection,
               embedder: Any, options: DocumentOptions | None, log: bool = False) -> dict[str, Any]:
    """Every question once; follow-ups get the previous question and answer as history."""
    import torch

    torch.manual_seed(0)
    rows = []
    answers: list[Answer] = []
    for i, q in enumerate(questions):
        history: list[dict[str, str]] = []
        if q.followup_of is not None:
            prev = questions[q.followup_of]
            history = [{"role": "user", "content": prev.question},
                       {"role": "assistant", "content": answers[q.followup_of].answer}]
        if options is None:
            answer = _seed_answer(llm, q, collection, embedder, history)
        else:
            answer = answer_question(llm, q.question, collection, embedder, history, options)
        answers.append(answer)
        before = prepare_turn(answer.standalone, collection, embedder, None,
                              replace(options or DocumentOptions(), rewrite=False)).evidence
        files = [s.file for s in answer.sources]
        retrieved = [h.chunk.source for h in prepare_turn(
            answer.standalone, collection, embedder, None, options or DocumentOptions()).hits]
        row = {
            "i": i, "question": q.question, "answerable": q.answerable,
            "right": is_right(q, answer),
            "answer": answer.answer, "draft": answer.draft, "stop": answer.stop_reason,
            "hit1": bool(retrieved) and retrieved[0] == q.file,
            "hitk": q.file in retrieved,
            "evidence_before": bool(before) and q.evidence in before[0].sentence,
            "evidence_after": bool(answer.evidence) and q.evidence in answer.evidence[0].sentence,
            "answered": not answer.not_in_documents, "files": files,
            "quoted": answer.quoted, "tags": list(q.tags),
            "first_token": answer.timing.get("first_token_seconds", 0.0),
            "tps": answer.timing.get("decode_tokens_per_second",
                                     answer.timing.get("tokens_per_second", 0.0)),
            "tokens": answer.tokens.get("generated", 0),
        }
        rows.append(row)
        if log:
            mark = "ok " if row["right"] else "BAD"
            print(f"  {mark} {q.question[:60]:60s} -> {answer.answer[:90]!r}"
                  + (f" (draft {answer.draft[:60]!r})" if answer.draft else ""), file=sys.stderr)
    return {"config": name, **summarize(rows), "rows": rows}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    absent = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if r["answered"]]
    generated = [r for r in rows if r["tokens"]]

    def share(items: list[dict[str, Any]], key: str) -> float:
        return sum(bool(r[key]) for r in items) / len(items) if items else 0.0

    return {
        "hit@1": share(answerable, "hit1"), "hit@k": share(answerable, "hitk"),
        "answers_right": share(answerable, "right"),
        "evidence_right": share(answered, "evidence_after"),
        "evidence_before_answer": share(answerable, "evidence_before"),
        "not_in_docs_right": share(absent, "right"),
        "quoted_evidence": share(answerable, "quoted"),
        "first_token_s": statistics.median(r["first_token"] for r in generated) if generated else 0,
        "decode_tok_s": statistics.median(r["tps"] for r in generated) if generated else 0,
        "mean_tokens": statistics.mean(r["tokens"] for r in rows),
    }


def by_tag(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per tag and configuration: how many questions, and the share answered right."""
    tags = sorted({t for r in results for row in r["rows"] for t in row["tags"]})
    found = []
    for tag in [*tags, "not in the documents"]:
        entry: dict[str, Any] = {"tag": tag}
        for result in results:
            rows = [row for row in result["rows"] if tag in row["tags"]
                    or (tag == "not in the documents" and not row["answerable"])]
            entry["n"] = len(rows)
            entry[result["config"]] = sum(r["right"] for r in rows) / len(rows) if rows else 0.0
        found.append(entry)
    return found


def configs(levers: bool) -> list[tuple[str, DocumentOptions | None]]:
    default = DocumentOptions()
    found: list[tuple[str, DocumentOptions | None]] = [("default", default)]
    if levers:
        found += [
            ("dense only (no BM25)", replace(default, hybrid=False)),
            ("no follow-up rewrite", replace(default, rewrite=False)),
            ("no guard", replace(default, guard=False)),
            ("no grounding check", replace(default, grounding=False)),
            ("repetition_penalty 1.1", replace(default, repetition_penalty=1.1)),
            ("sampling t=0.3", replace(default, temperature=0.3)),
            ("k=5", replace(default, k=5)),
            ("seed settings", None),
        ]
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench qa")
    parser.add_argument("--levers", action="store_true", help="also each lever off, and the seed")
    parser.add_argument("--model", default=None, help="key in configs/llm.toml")
    parser.add_argument("--log", action="store_true", help="print every answer")
    args = parser.parse_args(argv)
    questions = load_questions()
    embedder = load_embeddings()
    spec = load_registry().get(args.model)
    llm = load_llm(spec)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        collection = build_collection(Path(tmp), embedder)
        for name, options in configs(args.levers):
            print(f"{name}…", file=sys.stderr, flush=True)
            results.append(run_config(name, llm, questions, collection, embedder, options,
                                      log=args.log))
    summary = [{k: v for k, v in r.items() if k != "rows"} for r in results]
    print(table(summary, f"Document QA — {spec.display}, {len(questions)} questions "
                         f"({sum(q.answerable for q in questions)} answerable)"))
    print(table(by_tag(results), "Answers right per tag (unanswerable ones: \"not in the "
                                 "documents\" right)"))
    path = save("qa", {"model": spec.key, "results": results})
    print(f"saved {path}")
    return {"model": spec.key, "summary": summary}


if __name__ == "__main__":
    main(sys.argv[1:])
