"""Chat messages as the exports need them: parsed, cleaned, compared.

Traces arrive in whatever chat shape the gateway logged (a JSON string, content as a list of
parts, roles named `human` or `ai`); OpenAI's fine-tuning upload accepts only a few roles and
keys and rejects empty contents. Cleaning once here keeps every export format in agreement.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from typing import Any

ROLES = ("system", "developer", "user", "assistant")
_ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "gpt": "assistant",
}
# Roles that carry no part of the conversation's meaning for comparing two prompts: a prompt
# version changes the system message, not what the user asked.
_INSTRUCTION_ROLES = ("system", "developer")


def _content_text(content: Any) -> str:
    """A message content as text: strings as they are, lists of parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def parse_messages(value: Any) -> list[dict[str, str]]:
    """The usable messages of a trace, each exactly `{"role", "content"}`.

    Args:
        value: A JSON string or a list of message dicts (as `traces.messages` holds).

    Returns:
        Messages with a known role and non-empty text, in order; tool calls, images and
        unknown roles are left out (they cannot be shown or trained on as text).
    """
    return [{"role": role, "content": text} for role, text in message_turns(value)]


def message_turns(value: Any) -> list[tuple[str, str]]:
    """`parse_messages` as (role, content) pairs (no dict per message)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return []
    if not isinstance(value, list | tuple):
        try:  # numpy arrays and pyarrow lists
            value = list(value)
        except TypeError:
            return []
    out = []
    for message in value:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "").strip().lower()
        role = _ROLE_ALIASES.get(role, role)
        text = _content_text(message.get("content"))
        if role in ROLES and text.strip():
            out.append((role, text))
    return out


def prompt_is_usable(messages: list[dict[str, str]]) -> bool:
    """A prompt to train on: it has a user turn and ends with one (the turn being answered)."""
    return bool(messages) and messages[-1]["role"] == "user"


def last_request(messages: list[dict[str, str]]) -> str:
    """The last user message (what the answer responds to), or ''."""
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return ""


def normalize_text(text: str | None) -> str:
    """Case-folded text with whitespace collapsed: the key for 'the same text'."""
    return _normalized(text or "")


def fold_text(text: str | None) -> str:
    """`normalize_text` without its memo: for texts read once (they would fill it)."""
    return " ".join((text or "").split()).casefold()


@lru_cache(maxsize=2**21)
def _normalized(text: str) -> str:
    """`normalize_text`, memoized: a 100k-event window asks it ~3.5M times of ~100k texts.

    Sized for a 14-day window at 100k events a day (a smaller cache thrashes there).
    """
    return fold_text(text)


def context_key(messages: list[dict[str, str]]) -> str:
    """A key of the conversation before the last user message, system messages left out.

    Two prompts are comparable turn-for-turn only when everything said before the last
    request is the same: "can I do it at home?" means different things after different
    questions.
    """
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)
    before = tuple(
        (m["role"], normalize_text(m["content"]))
        for m in messages[:last_user]
        if m["role"] not in _INSTRUCTION_ROLES
    )
    return _context_hash(before) if before else ""


@lru_cache(maxsize=2**18)
def _context_hash(before: tuple[tuple[str, str], ...]) -> str:
    """The hash of a conversation, memoized: many requests follow one earlier exchange."""
    return hashlib.sha256(json.dumps([list(turn) for turn in before]).encode()).hexdigest()[:16]


def estimate_tokens(texts: list[str], chars_per_token: float = 3.0) -> int:
    """A conservative token count of a chat example (characters / chars_per_token + framing)."""
    return sum(math.ceil(len(t) / chars_per_token) + 4 for t in texts) + 3
