"""A chat tokenizer read straight from a saved folder, without importing transformers.

Why: importing transformers and building ``AutoTokenizer`` costs seconds on a
small CPU (the config lookup pulls in its image/video utilities and torchvision),
while ``ert chat`` needs only ``tokenizer.json`` (the ``tokenizers`` library) and
the chat template (jinja2). :class:`ChatTokenizer` offers the few methods ERT
calls on a tokenizer (``apply_chat_template``, ``decode``, ``pad_token_id``) and
gives the same ids as transformers for ERT's own converted models
(``tests/llm/test_lean.py``). :func:`core.llm.loader.load_llm` uses it only
where it can read everything; otherwise transformers' tokenizer is loaded.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

TEMPLATE_FILE = "chat_template.jinja"


def _render(template: str, messages: list[dict[str, str]], add_generation_prompt: bool,
            specials: dict[str, str]) -> str:
    """Render a chat template as transformers does (sandboxed, trimmed blocks)."""
    from jinja2.exceptions import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False,
                                                              indent=indent)
    env.globals.update(raise_exception=raise_exception,
                       strftime_now=lambda fmt: datetime.now().strftime(fmt))
    return env.from_string(template).render(messages=messages,
                                            add_generation_prompt=add_generation_prompt,
                                            **specials)


class ChatTokenizer:
    """``tokenizer.json`` plus the chat template and special tokens of a saved folder."""

    def __init__(self, backend: Any, chat_template: str, specials: dict[str, str]) -> None:
        self.backend = backend
        self.chat_template = chat_template
        self.specials = specials
        self.eos_token = specials.get("eos_token")
        pad = specials.get("pad_token") or self.eos_token
        self.pad_token_id = backend.token_to_id(pad) if pad else None

    @classmethod
    def from_folder(cls, folder: Path) -> ChatTokenizer | None:
        """The tokenizer of ``folder``, or ``None`` when a part is missing or unreadable."""
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            template_file = folder / TEMPLATE_FILE
            template = (template_file.read_text(encoding="utf-8") if template_file.exists()
                        else config.get("chat_template"))
            if not isinstance(template, str) or not (folder / "tokenizer.json").exists():
                return None
            from tokenizers import Tokenizer

            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception:  # OSError, bad JSON, or the tokenizers library's own error type
            return None
        specials = {k: v for k, v in config.items()
                    if k.endswith("_token") and isinstance(v, str)}
        return cls(backend, template, specials)

    def apply_chat_template(self, messages: list[dict[str, str]],
                            add_generation_prompt: bool = True, return_tensors: str = "pt",
                            return_dict: bool = True) -> dict[str, Any]:
        """The prompt's ids as ``{"input_ids", "attention_mask"}`` tensors of shape 1 x T."""
        import torch

        text = _render(self.chat_template, messages, add_generation_prompt, self.specials)
        ids = self.backend.encode(text, add_special_tokens=False).ids
        input_ids = torch.tensor([ids], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)
