"""The transcription API (the seed's ``start_api.py``): FastAPI over the ASR backends."""
