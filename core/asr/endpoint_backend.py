"""A model served over HTTP (ERT's own ``ert serve`` or any OpenAI-compatible API).

Registered like a local model (``backend = "endpoint"``), so the batch
evaluation, the compare page and the upload comparison put a served model
beside in-process ones. A batch is sent as concurrent requests, so a server
that batches (as ``ert serve`` does) can group them; the time measured is end
to end, network and queueing included.
"""

from __future__ import annotations

from core.asr.base import Backend, DecodeOptions
from core.audio import SAMPLE_RATE
from core.hub import ModelUnavailableError

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

TIMEOUT_SECONDS = 600.0


def wav_bytes(audio: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class EndpointBackend(Backend):
    """POST each clip to ``{source}/audio/transcriptions`` (``source`` ends in ``/v1``)."""

    _model_attrs = ("client",)
    remote = True  # the server holds the model: only an HTTP client here
    activation_floor_gb = 0.05
    rtfx_prior = {"cpu": 20.0, "cuda": 20.0}  # the server's speed is unknown here
    client: Any = None

    @property
    def base_url(self) -> str:
        return self.spec.source.rstrip("/")

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.spec.api_key_env) if self.spec.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _load(self) -> None:
        import httpx

        self.client = httpx.Client(timeout=TIMEOUT_SECONDS, headers=self._headers())
        health = self.base_url.removesuffix("/v1") + "/health"
        try:
            self.client.get(health, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            self.client.close()
            self.client = None
            raise ModelUnavailableError(f"the endpoint {self.base_url} is not answering "
                                        f"({exc})") from exc
        self.dtype = "remote"  # the server's weights, in whatever dtype it chose

    def free(self) -> None:
        if self.client is not None:
            self.client.close()
        super().free()

    def _one(self, audio: np.ndarray, options: DecodeOptions) -> str:
        data: dict[str, str] = {"model": self.spec.endpoint_model or self.spec.key,
                                "response_format": "json"}
        if options.language:
            data["language"] = options.language
        response = self.client.post(f"{self.base_url}/audio/transcriptions", data=data,
                                    files={"file": ("clip.wav", wav_bytes(audio), "audio/wav")})
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise RuntimeError(f"HTTP {response.status_code}: {message}")
        return str(response.json()["text"])

    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        with ThreadPoolExecutor(max_workers=max(1, len(clips))) as pool:
            return list(pool.map(lambda clip: self._one(clip, options), clips))
