"""Hybrid retrieval: BM25 saved without pickle, fused with the dense ranking, a relative floor."""

from core.rag.chunking import chunk_document, sections
from core.rag.documents import read_document
from core.rag.fusion import above_relative_floor, reciprocal_rank_fusion
from core.rag.lexical import LexicalIndex, tokenize
from core.rag.store import Collection

import numpy as np
import pytest

from tests.rag.embedders import HashEmbedder


def test_rrf_puts_the_chunk_both_rankings_like_first():
    fused = reciprocal_rank_fusion([["a", "b", "d"], ["b", "c"]])
    assert list(fused) == ["b", "a", "c", "d"]  # found by both first, then by rank
    assert fused["b"] == 1 / 62 + 1 / 61


def test_relative_floor_keeps_near_best_hits_in_either_ranking():
    dense = {"right": 0.60, "near": 0.50, "unrelated": 0.25}
    lexical = {"right": 7.0, "lexical-only": 6.0}
    assert above_relative_floor("near", [dense, lexical])
    assert above_relative_floor("lexical-only", [dense, lexical])
    assert not above_relative_floor("unrelated", [dense, lexical])


def test_tokenize_folds_accents_drops_stop_and_question_words():
    assert tokenize("How many boats leave Évian's harbour on Sundays?") == \
        ["boat", "leave", "evian", "harbour", "sunday"]
    assert tokenize("The ride takes 12 minutes; dinner at 19:00, 2,877 metres") == \
        ["ride", "take", "12", "minute", "dinner", "19:00", "2,877", "metre"]


def test_bm25_index_saves_as_arrays_and_json_and_refuses_pickles(tmp_path):
    index = LexicalIndex.build([10, 11], ["The ferry Ondine carries 620 passengers.",
                                          "Bread is delivered on Tuesday."])
    index.save(tmp_path / "bm25")
    names = sorted(p.name for p in (tmp_path / "bm25").iterdir())
    assert all(n.endswith((".json", ".npy")) for n in names)
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert max(loaded.scores("Ondine passengers").items(), key=lambda kv: kv[1])[0] == 10
    data = next((tmp_path / "bm25").glob("data*.npy"))
    np.save(data, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        LexicalIndex.load(tmp_path / "bm25")


def test_collection_rebuilds_a_damaged_bm25_index_from_its_chunks(tmp_path):
    emb = HashEmbedder()
    col = Collection("docs", root=tmp_path)
    col.add_document(read_document("ferry.md", b"The ferry Ondine carries 620 passengers."), emb)
    (tmp_path / "docs" / "bm25" / "ids.json").write_text("{not json")
    again = Collection("docs", root=tmp_path)
    assert again.lexical.scores("Ondine")  # rebuilt, not an error


def test_hybrid_search_finds_a_rare_code_dense_misses(tmp_path):
    emb = HashEmbedder()
    col = Collection("docs", root=tmp_path)
    filler = " ".join(f"The building has many rooms and corridors number {i}." for i in range(12))
    col.add_document(read_document("a.md", f"{filler} Badges are issued in room B-214.".encode()),
                     emb)
    col.add_document(read_document("b.md", b"Room keys are kept at the front desk of the rooms."),
                     emb)
    dense = col.search("Where is B-214?", emb, k=2, hybrid=False)
    hybrid = col.search("Where is B-214?", emb, k=2)
    assert hybrid[0].chunk.source == "a.md" and hybrid[0].lexical > 0
    assert not dense or dense[0].chunk.source != "a.md" or dense[0].score < hybrid[0].score + 1


def test_search_drops_a_file_far_below_the_best_hit(tmp_path):
    emb = HashEmbedder()
    col = Collection("docs", root=tmp_path)
    col.add_document(read_document("ferry.md", b"The ferry Ondine crosses the lake in 35 minutes."),
                     emb)
    col.add_document(read_document("bakery.md", b"The bakery has seven ovens and crosses nothing."),
                     emb)
    hits = col.search("How long does the ferry Ondine take to cross the lake?", emb, k=3)
    assert [h.chunk.source for h in hits] == ["ferry.md"]


def test_chunks_keep_their_heading_path_and_headings_are_never_alone():
    text = ("# Observatory\nIntro line.\n\n## Visits\nTours are on Wednesday.\n\n"
            "```\n# not a heading\n```\n## Staff\nThe director is Dr. Lucie Ferrand.\n")
    assert [s.title for s in sections(text)] == ["Observatory", "Observatory > Visits",
                                                 "Observatory > Staff"]
    chunks = chunk_document(text)
    assert chunks[1].startswith("Observatory > Visits\nTours are on Wednesday.")
    assert "# not a heading" in chunks[1]
    assert all("\n" in c for c in chunks)  # a heading line always has its paragraph
    long = "# Guide\n" + " ".join(f"Sentence {i} of the guide." for i in range(200))
    assert all(c.startswith("Guide\n") and len(c) <= 800 for c in chunk_document(long))
