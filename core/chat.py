"""A chat turn: over the user's documents when there are any, else the model alone.

Document questions go through one pipeline shared by the page, ``ert chat``
and the QA benchmark: the question made standalone (:mod:`core.rag.followup`),
hybrid retrieval, evidence sentences (:mod:`core.rag.evidence`), a prompt
built for small instruct models (context first, question last, no chat
history to copy from), greedy decoding under :class:`core.llm.answer_guard.AnswerGuard`,
then a grounding check: an answer whose new facts are not in the retrieved
text is refused. A refused draft gives way to the evidence sentence that answers
the question ("The documents say: «…»", with file and chunk) when one does, and
to "not in the documents" only when no retrieved passage is about the question.
Without documents, the chat keeps its plain prompt, history and the user's
sampling settings.
"""

from __future__ import annotations

from core.llm.answer_guard import AnswerGuard
from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
from core.rag.evidence import Evidence, answering_sentence, select_evidence
from core.rag.followup import standalone
from core.rag.grounding import support
from core.rag.store import Collection, Embedder, Hit

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.llm.loader import LoadedLLM

SYSTEM_PROMPT = (
    "You are a helpful assistant running locally. Answer briefly and accurately. "
    "When document excerpts are given, base the answer on them and name the file you used."
)
DOC_SYSTEM_PROMPT = (
    "You answer questions about the user's documents. Use only the context. "
    "Answer in one short sentence."
)
NOT_IN_DOCUMENTS = "The documents do not say."
QUOTE_TEMPLATE = "The documents say: «{sentence}» ({file}, chunk {chunk})"
QUOTE_POOL = 12  # evidence sentences a refused draft may give way to
NO_CONTEXT_NOTE = "No document context was found for this question; answering from the model alone."
NO_DOCUMENT_NOTE = "Nothing in the documents matches this question."
MAX_CONTEXT_CHARS = 2400
MAX_HISTORY_MESSAGES = 6
_REFUSALS = re.compile(
    r"documents? do(?:es)? not say|not (?:in|mentioned in|found in|given in|stated in) the "
    r"(?:documents?|context|text)|(?:context|documents?|text) (?:does|do)(?: not|n't) "
    r"(?:say|contain|mention|provide|specify|state|give)|no information|not (?:mentioned|specified"
    r"|provided|stated)|cannot (?:find|answer)|can't (?:find|answer)|unable to (?:find|answer)",
    re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """A chunk an answer used, shown whole under it as plain text."""

    file: str
    chunk: int
    score: float
    excerpt: str

    def label(self) -> str:
        return f"{self.file} · chunk {self.chunk} · score {self.score:.2f}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "chunk": self.chunk, "score": round(self.score, 4)}


@dataclass(frozen=True)
class DocumentOptions:
    """How a document question is answered; each switch is a lever ``bench qa`` measures."""

    k: int = 3  # chunks retrieved
    hybrid: bool = True  # BM25 fused with the dense ranking
    rewrite: bool = True  # follow-ups made standalone
    guard: bool = True  # stop on loops / invented links, drop an echoed question
    grounding: bool = True  # unsupported new facts -> "not in the documents"
    context: str = "evidence"  # what the model reads: "evidence" sentences or whole "chunks"
    ask_refusal: bool = False  # the prompt asks for "not in the documents" (135M: refuses more)
    max_new_tokens: int = 96  # a document answer is a sentence or two
    temperature: float = 0.0  # greedy: the same question gets the same answer
    repetition_penalty: float = 1.0  # >1 penalises copying the context's own words

    def generation(self) -> GenerationOptions:
        return GenerationOptions(max_new_tokens=self.max_new_tokens,
                                 temperature=self.temperature,
                                 repetition_penalty=self.repetition_penalty)


@dataclass
class Turn:
    """One question after retrieval, ready to generate."""

    question: str
    standalone: str
    mode: str  # "documents" or "model"
    hits: list[Hit]
    evidence: list[Evidence]
    messages: list[dict[str, str]]
    options: GenerationOptions
    guard: AnswerGuard | None = None
    retrieval_seconds: float = 0.0
    plain: bool = False  # no collection was chosen: the model alone is what was asked for

    @property
    def note(self) -> str | None:
        if self.mode == "model":
            return None if self.plain else NO_CONTEXT_NOTE
        return None if self.hits else NO_DOCUMENT_NOTE


@dataclass
class Answer:
    """What ``ert chat --json`` prints and the page shows."""

    question: str
    standalone: str
    mode: str
    answer: str
    evidence: list[Evidence]
    sources: list[Source]
    draft: str | None = None  # the model's words when they were replaced
    stop_reason: str | None = None  # why generation was cut (loop, invented link)
    grounding: str | None = None  # why the draft was not supported by the documents
    quoted: bool = False  # the answer quotes the evidence in place of a refused draft
    timing: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    streamed: str = field(default="", repr=False)  # what was shown while generating

    @property
    def not_in_documents(self) -> bool:
        return self.mode == "documents" and self.answer == NOT_IN_DOCUMENTS

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["streamed"]
        data["evidence"] = [e.as_dict() for e in self.evidence]
        data["sources"] = [s.as_dict() for s in self.sources]
        data["not_in_documents"] = self.not_in_documents
        return data


# ------------------------------------------------------------------ prompts
def context_block(hits: list[Hit], max_chars: int = MAX_CONTEXT_CHARS) -> str:
    """Excerpts in score order, cut to fit a small model's context."""
    parts: list[str] = []
    used = 0
    for hit in hits:
        text = hit.chunk.text[: max(0, max_chars - used)]
        if not text:
            break
        parts.append(f"[{hit.chunk.source}]\n{text}")
        used += len(text)
    return "\n\n".join(parts)


def evidence_block(evidence: list[Evidence]) -> str:
    return "\n".join(f"- {e.sentence}" for e in evidence)


def document_messages(question: str, hits: list[Hit], evidence: list[Evidence] | None = None,
                      ask_refusal: bool = False) -> list[dict[str, str]]:
    """Context first (the evidence sentences, or whole chunks), then the instruction and the
    question last; no chat history to copy from.

    Measured on ``bench qa`` with the bundled 135M model: evidence sentences rather than whole
    chunks, and no request to say "not in the documents" (it then refuses answerable
    questions too; the grounding check says it instead), each gain many answers.
    """
    context = evidence_block(evidence) if evidence else context_block(hits)
    refusal = (f" If the context does not contain the answer, reply: {NOT_IN_DOCUMENTS}"
               if ask_refusal else "")
    content = (f"Context:\n{context}\n\n"
               f"Answer the question using only the context above.{refusal}\n"
               f"Question: {question}")
    return [{"role": "system", "content": DOC_SYSTEM_PROMPT},
            {"role": "user", "content": content}]


def build_messages(question: str, hits: list[Hit],
                   history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The chat without documents: system prompt, recent history, the question."""
    if hits:
        return document_messages(question, hits)
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for turn in (history or [])[-MAX_HISTORY_MESSAGES:]:
        if turn.get("role") in {"user", "assistant"} and turn.get("content"):
            messages.append({"role": turn["role"], "content": turn["content"]})
    messages.append({"role": "user", "content": question})
    return messages


def sources_from_hits(hits: list[Hit]) -> list[Source]:
    return [Source(h.chunk.source, h.chunk.index, h.score, h.chunk.text) for h in hits]


def previous_question(history: list[dict[str, str]] | None) -> str | None:
    for turn in reversed(history or []):
        if turn.get("role") == "user" and turn.get("content"):
            return turn["content"]
    return None


# ------------------------------------------------------------------ the turn
def prepare_turn(question: str, collection: Collection | None, embedder: Embedder | None,
                 history: list[dict[str, str]] | None = None,
                 options: DocumentOptions | None = None,
                 chat_options: GenerationOptions | None = None) -> Turn:
    """Retrieve for ``question``; an empty (or no) collection means the model alone
    (``collection=None``: the plain chat, chosen as such, so the turn carries no note)."""
    if collection is None or embedder is None or not len(collection):
        return Turn(question, question, "model", [], [], build_messages(question, [], history),
                    chat_options or GenerationOptions(), plain=collection is None)
    options = options or DocumentOptions()
    started = time.perf_counter()
    query = standalone(question, previous_question(history)) if options.rewrite else question
    hits = collection.search(query, embedder, k=options.k, hybrid=options.hybrid)
    evidence = select_evidence(query, hits, embedder) if hits else []
    guard = AnswerGuard(query, context_block(hits)) if options.guard else None
    messages = document_messages(query, hits, evidence if options.context == "evidence" else None,
                                 options.ask_refusal)
    return Turn(question, query, "documents", hits, evidence, messages, options.generation(),
                guard, time.perf_counter() - started)


def stream_answer(llm: LoadedLLM, turn: Turn, stop: threading.Event | None = None,
                  stats: GenerationStats | None = None) -> Iterator[str]:
    """The answer's text as it is generated (guarded); nothing is generated without hits."""
    if turn.mode == "documents" and not turn.hits:
        yield NOT_IN_DOCUMENTS
        return
    stats = stats if stats is not None else GenerationStats()
    started = time.perf_counter()
    pieces = stream_chat(llm, turn.messages, turn.options, stop=stop, stats=stats)
    first = True
    try:
        for piece in pieces:
            if first:
                stats.extra["first_token_seconds"] = time.perf_counter() - started
                first = False
            if turn.guard is None:
                yield piece
                continue
            shown = turn.guard.feed(piece)
            if shown:
                yield shown
            if turn.guard.reason:
                break  # closing the generator stops the worker
    finally:
        pieces.close()
    if turn.guard is not None:
        rest = turn.guard.flush()
        if rest:
            yield rest


def finish_turn(turn: Turn, text: str, embedder: Embedder | None,
                grounding: bool = True) -> Answer:
    """Check the answer against the documents, then pick its evidence and sources."""
    text = (turn.guard.text() if turn.guard is not None and turn.guard.raw else text).strip()
    reason = turn.guard.reason if turn.guard is not None else None
    if turn.mode == "model":
        return Answer(turn.question, turn.standalone, "model", text, [], [], stop_reason=reason)
    draft, why, supporting = None, None, None
    if not turn.hits or not text or _REFUSALS.search(text):
        draft, text = (text if text not in ("", NOT_IN_DOCUMENTS) else None), NOT_IN_DOCUMENTS
    elif grounding:
        check = support(text, turn.standalone, turn.hits)
        supporting = check.chunk
        if not check.grounded:
            draft, why, text = text, check.reason, NOT_IN_DOCUMENTS
    if text == NOT_IN_DOCUMENTS:
        quote = answering_sentence(turn.standalone, _quote_pool(turn, embedder), turn.hits)
        if quote is None:
            return Answer(turn.question, turn.standalone, "documents", text, [], [], draft,
                          reason, why)
        sources = [s for s in sources_from_hits(turn.hits) if (s.file, s.chunk) == (
            quote.file, quote.chunk)]
        return Answer(turn.question, turn.standalone, "documents", quoted_answer(quote),
                      [quote, *(e for e in turn.evidence if e != quote)], sources, draft,
                      reason, why, quoted=True)
    evidence = select_evidence(turn.standalone, turn.hits, embedder, answer=text) \
        if embedder is not None else turn.evidence
    used = {(e.file, e.chunk) for e in evidence}
    if supporting is not None:
        used.add((supporting.chunk.source, supporting.chunk.index))
    sources = [s for s in sources_from_hits(turn.hits) if (s.file, s.chunk) in used]
    return Answer(turn.question, turn.standalone, "documents", text, evidence, sources, draft,
                  reason)


def _quote_pool(turn: Turn, embedder: Embedder | None) -> list[Evidence]:
    """The sentences a refused draft may give way to: those the model read first, then the
    rest of the retrieved chunks' sentences ranked the same way (no relative floor)."""
    if embedder is None or not turn.hits:
        return turn.evidence
    read = {(e.file, e.chunk, e.sentence) for e in turn.evidence}
    rest = select_evidence(turn.standalone, turn.hits, embedder, limit=QUOTE_POOL,
                           relative_floor=0.0)
    return [*turn.evidence, *(e for e in rest if (e.file, e.chunk, e.sentence) not in read)]


def quoted_answer(evidence: Evidence) -> str:
    """The answer that quotes an evidence sentence, verbatim, with its file and chunk."""
    return QUOTE_TEMPLATE.format(sentence=evidence.sentence, file=evidence.file,
                                 chunk=evidence.chunk)


def answer_question(llm: LoadedLLM, question: str, collection: Collection | None,
                    embedder: Embedder | None, history: list[dict[str, str]] | None = None,
                    options: DocumentOptions | None = None,
                    chat_options: GenerationOptions | None = None,
                    stop: threading.Event | None = None,
                    on_piece: Callable[[str], object] | None = None) -> Answer:
    """One whole turn, for the CLI and the benchmark: prepare, generate, check.

    ``on_piece`` sees the text as it streams (the CLI prints it).
    """
    options = options or DocumentOptions()
    started = time.perf_counter()
    turn = prepare_turn(question, collection, embedder, history, options, chat_options)
    stats = GenerationStats()
    pieces = []
    for piece in stream_answer(llm, turn, stop=stop, stats=stats):
        pieces.append(piece)
        if on_piece is not None:
            on_piece(piece)
    text = "".join(pieces)
    finish_started = time.perf_counter()
    answer = finish_turn(turn, text, embedder, grounding=options.grounding)
    answer.timing = {
        "retrieval_seconds": round(turn.retrieval_seconds, 4),
        "first_token_seconds": round(stats.extra.get("first_token_seconds", 0.0), 4),
        "generation_seconds": round(stats.seconds, 4),
        "evidence_seconds": round(time.perf_counter() - finish_started, 4),
        "total_seconds": round(time.perf_counter() - started, 4),
        "tokens_per_second": round(stats.tokens_per_second, 2),  # prefill included
        "decode_tokens_per_second": round(float(stats.extra.get("decode_tokens_per_second")
                                                or stats.tokens_per_second), 2),
    }
    answer.tokens = {"prompt": stats.prompt_tokens, "generated": stats.new_tokens}
    answer.streamed = text
    return answer


__all__ = ["NOT_IN_DOCUMENTS", "Answer", "DocumentOptions", "Source", "Turn", "answer_question",
           "build_messages", "finish_turn", "prepare_turn", "quoted_answer", "stream_answer"]
