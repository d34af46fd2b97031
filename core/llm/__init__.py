"""The local chat LLM: registry, loading (lazy, cached) and streamed generation."""
