"""Document answers end to end: the real bundled LLM and MiniLM over ERT's QA documents."""

from core.chat import NOT_IN_DOCUMENTS, answer_question, prepare_turn
from core.rag.documents import read_document
from core.rag.store import Collection

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
DOCS = REPO / "bench" / "qa" / "docs"


@pytest.fixture(scope="module")
def collection(tmp_path_factory, embedder):
    col = Collection("qa", root=tmp_path_factory.mktemp("collections"))
    for name in ("ferry.md", "radio.md", "trail.md"):
        col.add_document(read_document(name, (DOCS / name).read_bytes()), embedder)
    return col


def test_answer_comes_from_the_document_with_its_evidence_sentence(smollm, embedder, collection):
    answer = answer_question(smollm, "How many passengers can the ferry Ondine carry?",
                             collection, embedder)
    assert "620" in answer.answer
    assert answer.evidence[0].sentence == ("The ship carries up to 620 passengers and was built "
                                           "in 1998 in a shipyard in Genoa.")
    assert {s.file for s in answer.sources} == {"ferry.md"}
    assert answer.tokens["generated"] > 0 and answer.timing["first_token_seconds"] > 0


def test_a_question_the_documents_do_not_answer_gets_not_in_the_documents(smollm, embedder,
                                                                           collection):
    answer = answer_question(smollm, "Who is the captain of the ferry Ondine?", collection,
                             embedder)
    assert answer.answer == NOT_IN_DOCUMENTS and answer.not_in_documents
    assert answer.evidence == [] and answer.sources == []


def test_a_followup_is_searched_as_a_standalone_question(embedder, collection):
    history = [{"role": "user", "content": "What time does the morning show on Radio Vallée "
                                           "start?"},
               {"role": "assistant", "content": "It starts at 6:30."}]
    turn = prepare_turn("And who presents it?", collection, embedder, history)
    assert turn.standalone == "Who presents the morning show on Radio Vallée?"
    assert any("Sonia Kaddour" in e.sentence for e in turn.evidence)
    assert "6:30." not in turn.messages[-1]["content"].split("Context:")[0]  # no history copied


def test_ert_chat_json_prints_answer_evidence_sources_and_timing(tmp_path):
    env = {**os.environ, "ERT_HOME": str(tmp_path)}
    cli = [sys.executable, "-m", "core"]
    subprocess.run([*cli, "ingest", "qa", str(DOCS / "trail.md")], env=env, check=True,
                   cwd=REPO, capture_output=True, timeout=300)
    done = subprocess.run([*cli, "chat", "--collection", "qa", "--json",
                           "How many beds does the Refuge des Aiguilles have?"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "48" in data["answer"]
    top = data["evidence"][0]
    assert set(top) == {"file", "chunk", "sentence", "score"}
    assert (top["file"], top["chunk"]) == ("trail.md", 1) and "48 beds" in top["sentence"]
    assert data["sources"][0]["file"] == "trail.md"
    assert set(data["timing"]) >= {"first_token_seconds", "tokens_per_second"}
    assert data["tokens"]["generated"] > 0 and data["not_in_documents"] is False


def test_ert_chat_prints_the_refusal_as_the_answer_the_draft_labelled_and_no_progress_bar(
        tmp_path):
    env = {**os.environ, "ERT_HOME": str(tmp_path)}
    run = {"env": env, "cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    cli = [sys.executable, "-m", "core"]
    subprocess.run([*cli, "ingest", "qa", str(DOCS / "ferry.md")], check=True, **run)
    refused = subprocess.run([*cli, "chat", "--collection", "qa",
                              "Who is the captain of the ferry Ondine?"], **run)
    assert refused.returncode == 0, refused.stderr
    assert refused.stdout.strip() == NOT_IN_DOCUMENTS  # the answer, and nothing before it
    drafts = [line for line in refused.stderr.splitlines() if line.startswith("draft (not ")]
    assert len(drafts) == 1 and "captain" in drafts[0]
    # The model alone: streamed, and loaded without transformers (its import costs seconds).
    plain = subprocess.run([sys.executable, "-c", "import sys; from core.cli import main; "
                            "main(['chat', 'What is the capital of France?']); "
                            "print('transformers' in sys.modules)"], **run)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert "Paris" in lines[0] and lines[-1] == "False"
    for output in (refused.stdout, refused.stderr, plain.stdout, plain.stderr):
        assert "Loading weights" not in output and "%|" not in output
