"""Load on the transcription API: requests/s and latency at 1, 4 and 16 clients.

``python -m bench api`` — a real ``ert serve`` process on a loopback port,
faster-whisper tiny.en, one 4 s espeak-ng clip, with server-side batching on
and then off (``--no-batching``), each level bounded in requests and time.
Then a 3-minute file (espeak-ng sentences with pauses): the time to the first streamed
text (``stream=true``, server-sent events) against the time to the whole answer of the
same request unstreamed, both measured in this run. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import io
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile

from bench.common import save, table
from tests.browser import free_port

LEVELS = (1, 4, 16)
REQUESTS_PER_CLIENT = 4
TIME_LIMIT_S = 60.0
REPO = Path(__file__).resolve().parent.parent


def _wav() -> bytes:
    from core.audio import SAMPLE_RATE
    from core.demo_data import synthesize

    buffer = io.BytesIO()
    soundfile.write(buffer, synthesize("the quick brown fox jumps over the lazy dog", "en"),
                    SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


def _level(url: str, wav: bytes, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + TIME_LIMIT_S

    def client(_: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=120) as http:
            for _ in range(REQUESTS_PER_CLIENT):
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                response = http.post(f"{url}/v1/audio/transcriptions",
                                     files={"file": ("clip.wav", wav)},
                                     data={"model": "faster-whisper:tiny.en"})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "errors": errors,
            "req/s": len(latencies) / wall, "p50 s": float(np.percentile(latencies, 50)),
            "p95 s": float(np.percentile(latencies, 95))}


LONG_SECONDS = 180.0


def _long_wav() -> tuple[bytes, float]:
    """About three minutes of speech: demo sentences, each followed by a pause."""
    from core.audio import SAMPLE_RATE
    from core.demo_data import synthesize

    sentences = ["The quick brown fox jumps over the lazy dog.",
                 "Please close the door when you leave the room.",
                 "The meeting starts at nine in the morning on Monday.",
                 "She sells sea shells by the sea shore."]
    voiced = [synthesize(s, "en-us") for s in sentences]
    gap = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    parts, total, i = [], 0, 0
    while total < LONG_SECONDS * SAMPLE_RATE:
        parts += [voiced[i % len(voiced)], gap]
        total += voiced[i % len(voiced)].size + gap.size
        i += 1
    audio = np.concatenate(parts)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, SAMPLE_RATE, format="WAV")
    return buffer.getvalue(), audio.size / SAMPLE_RATE


def _first_text(url: str, wav: bytes) -> dict[str, Any]:
    """Streamed: seconds to the first ``transcript.text.delta`` and to ``done``; unstreamed:
    seconds to the whole answer."""
    import json

    started = time.perf_counter()
    first = done = None
    deltas = 0
    with httpx.stream("POST", f"{url}/v1/audio/transcriptions", timeout=600,
                      files={"file": ("long.wav", wav)},
                      data={"model": "faster-whisper:tiny.en", "stream": "true"}) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event["type"] == "transcript.text.delta":
                deltas += 1
                first = first or time.perf_counter() - started
            elif event["type"] == "transcript.text.done":
                done = time.perf_counter() - started
    started = time.perf_counter()
    whole = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("long.wav", wav)},
                       data={"model": "faster-whisper:tiny.en"}, timeout=600)
    unstreamed = time.perf_counter() - started
    assert whole.status_code == 200, whole.text
    return {"first text s (stream)": first, "done s (stream)": done, "deltas": deltas,
            "whole answer s (no stream)": unstreamed,
            "first text vs whole": first / unstreamed if first else None}


def _server(batching: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    flags = [] if batching else ["--no-batching"]
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port),
                             "--model", "faster-whisper:tiny.en", "--queue-size", "256",
                             *flags], cwd=REPO, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the API server did not start")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    wav = _wav()
    rows = []
    for batching in (True, False):
        proc, url = _server(batching)
        try:
            httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("w.wav", wav)},
                       timeout=120)  # load the model before timing
            for clients in LEVELS:
                row = {"batching": "on" if batching else "off", **_level(url, wav, clients)}
                rows.append(row)
                print(f"  {row}", file=sys.stderr)
            health = httpx.get(f"{url}/health").json()
            if batching:
                long_wav, long_seconds = _long_wav()
                streaming = {"audio s": long_seconds, **_first_text(url, long_wav)}
                print(f"  {streaming}", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(f"  batching {'on' if batching else 'off'}: {health['queues']}", file=sys.stderr)
    for row in rows:
        off = next(r for r in rows if r["batching"] == "off" and r["clients"] == row["clients"])
        row["req/s vs off"] = row["req/s"] / off["req/s"] if off["req/s"] else None
    print(table(rows, "ert serve, faster-whisper tiny.en, 4 s clip, loopback"))
    print(table([streaming], "a 3-minute file: first streamed text against the whole answer"))
    result = {"rows": rows, "streaming": streaming}
    print(f"saved {save('api', result)}")
    return result


if __name__ == "__main__":
    main()
