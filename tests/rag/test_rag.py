from core.chat import NO_CONTEXT_NOTE, build_messages, context_block, sources_from_hits
from core.rag.chunking import split_text
from core.rag.documents import DocumentError, read_document, safe_name
from core.rag.lexical import IDS_FILE
from core.rag.store import Chunk, Collection, CollectionError, Hit, check_name, list_collections

import pytest

from tests.rag.embedders import HashEmbedder


def test_read_document_rejects_empty_binary_and_fake_pdf():
    with pytest.raises(DocumentError, match="empty"):
        read_document("a.txt", b"")
    with pytest.raises(DocumentError, match="binary"):
        read_document("a.txt", b"\x00\x01\x02" * 100)
    with pytest.raises(DocumentError, match="not a PDF"):
        read_document("fake.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(DocumentError, match="unsupported"):
        read_document("a.exe", b"MZ")


def test_read_document_rejects_oversized_upload():
    with pytest.raises(DocumentError, match="over the"):
        read_document("big.txt", b"a" * 2000, max_bytes=1000)


def test_read_document_decodes_french_text_and_real_pdf(tmp_path):
    doc = read_document("notes.md", "Le château de Versailles est célèbre.".encode())
    assert "château" in doc.text
    latin1 = read_document("old.txt", "Fenêtre ouverte".encode("cp1252"))
    assert "Fenêtre" in latin1.text
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "blank.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(DocumentError, match="no text"):
        read_document("blank.pdf", path.read_bytes())


def test_upload_names_never_become_paths():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\x\\doc.txt") == "doc.txt"
    with pytest.raises(CollectionError):
        check_name("../evil")


def test_split_text_overlaps_and_respects_size():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(400))
    chunks = split_text(text, chunk_size=300, overlap=50)
    assert len(chunks) > 10
    assert all(len(c) <= 300 for c in chunks)


def test_collection_persists_and_reloads_without_pickle(tmp_path):
    emb = HashEmbedder()
    col = Collection("docs", root=tmp_path)
    doc = read_document("paris.txt", b"Paris is the capital of France. The Eiffel tower is there.")
    col.add_document(doc, emb)
    col.add_document(read_document("cats.txt", b"Cats sleep most of the day."), emb)
    files = sorted(p.name for p in (tmp_path / "docs").iterdir())
    assert files == ["bm25", "chunks.jsonl", "index.faiss", "meta.json"]
    lexical = sorted(p.name for p in (tmp_path / "docs" / "bm25").iterdir())
    assert IDS_FILE in lexical and all(n.endswith((".json", ".npy")) for n in lexical)
    reloaded = Collection("docs", root=tmp_path)
    assert reloaded.documents() == {"paris.txt": 1, "cats.txt": 1}
    hits = reloaded.search("capital of France", emb, k=1)
    assert hits[0].chunk.source == "paris.txt"
    assert list_collections(tmp_path) == ["docs"]


def test_readding_a_document_replaces_its_chunks(tmp_path):
    emb = HashEmbedder()
    col = Collection("docs", root=tmp_path)
    col.add_document(read_document("a.txt", b"first version"), emb)
    col.add_document(read_document("a.txt", b"second version entirely"), emb)
    assert len(col) == 1
    assert col.remove_document("a.txt") == 1
    assert col.search("version", emb) == []


def test_corrupt_collection_gives_a_clear_error(tmp_path):
    col = Collection("docs", root=tmp_path)
    col.add_document(read_document("a.txt", b"hello world"), HashEmbedder())
    (tmp_path / "docs" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(CollectionError, match="unreadable"):
        Collection("docs", root=tmp_path)


def test_prompt_carries_context_or_says_there_is_none():
    hit = Hit(Chunk(0, "paris.txt", 2, "Paris is the capital."), 0.8)
    with_ctx = build_messages("Capital?", [hit])
    assert "[paris.txt]\nParis is the capital." in with_ctx[-1]["content"]
    assert with_ctx[-1]["content"].endswith("Question: Capital?")
    assert sources_from_hits([hit])[0].label() == "paris.txt · chunk 2 · score 0.80"
    assert build_messages("Capital?", [])[-1]["content"] == "Capital?"
    assert "No document context" in NO_CONTEXT_NOTE
    long_hit = Hit(Chunk(1, "b.txt", 0, "x" * 10000), 0.5)
    assert len(context_block([long_hit], max_chars=100)) < 200
