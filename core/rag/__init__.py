"""Retrieval over the user's documents: reading, chunking, embedding, a FAISS store."""
