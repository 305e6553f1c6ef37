"""The optional cluster labeller: an OpenAI-compatible chat endpoint, off by default.

Bound in `feedback_pipelines.defs.clustering` from the environment:
`FEEDBACK_LABELLER_URL` (e.g. ``https://api.openai.com/v1``; empty = off),
`FEEDBACK_LABELLER_API_KEY` (a secret, bound with `dg.EnvVar`, never logged) and
`FEEDBACK_LABELLER_MODEL` (default ``gpt-4o-mini``).
"""

from __future__ import annotations

import dagster as dg

from feedback_pipelines.clustering.llm_labels import ChatLabeller


class ClusterLabellerResource(dg.ConfigurableResource):
    """Short cluster titles from an OpenAI-compatible endpoint; keyphrases when `url` is empty."""

    url: str = ""
    api_key: str = ""
    model: str = "gpt-4o-mini"
    timeout_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        """Whether titles are asked for at all."""
        return bool(self.url.strip())

    def describe(self) -> str:
        """Where titles come from, for logs (never the key)."""
        return f"{self.model} at {self.url}" if self.enabled else "keyphrases (no labeller URL)"

    def client(self) -> ChatLabeller | None:
        """A fresh client (its call and failure counts start at zero), or None when off."""
        if not self.enabled:
            return None
        return ChatLabeller(
            base_url=self.url,
            api_key=self.api_key,
            model=self.model or "gpt-4o-mini",
            timeout=self.timeout_seconds,
        )
