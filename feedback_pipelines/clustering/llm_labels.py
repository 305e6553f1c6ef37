"""Optional short titles for clusters from an OpenAI-compatible chat endpoint.

Keyphrases are the default label: free, deterministic, and always made of the cluster's own
words. Some teams prefer a title a person would write ("Refund after a cancelled flight"); any
server that speaks the OpenAI chat-completions API can write one (OpenAI, Azure OpenAI, vLLM,
llama.cpp's server, Ollama's /v1). Off unless a URL is configured.

What is sent: the cluster's keyphrases and a few representative quotes, which are redacted text
from the warehouse and are passed through `redact_pii` once more here. Nothing else (no user ids,
no versions, no raw events). Only the standard library is used (urllib), so the feature costs no
dependency. A failing call never fails the pipeline: the cluster keeps its keyphrase label and
the failure is counted.

A title is asked for once per topic, not once per day: a cluster that kept its id and whose
keyphrases mostly stayed the same keeps yesterday's title, so titles stay put like the ids do and
the endpoint sees a few calls a day.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from feedback_pipelines.clustering.pipeline import as_list

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You name groups of user feedback about an AI assistant. Given keyphrases and example "
    "messages from one group, reply with a short title (2 to 6 words) saying what the users "
    "asked about or complained about. Reply with the title only: no quotes, no punctuation at "
    "the end, no explanation."
)


class LabellerError(RuntimeError):
    """The endpoint could not give a usable title."""


def _redact(text: str) -> str:
    try:
        from feedback_pipelines.privacy import redact_pii
    except ImportError:  # pragma: no cover - privacy.py is part of the package
        return text
    return redact_pii(text)


def chat_completions_url(base_url: str) -> str:
    """The chat-completions endpoint for a base URL ('.../v1' or the full endpoint)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + "/chat/completions"


def clean_title(text: str, max_chars: int = 60) -> str:
    """The model's reply as a one-line title: first line, no quotes or markdown, capped."""
    line = next((x for x in (text or "").splitlines() if x.strip()), "")
    line = re.sub(r"^(title|label)\s*:\s*", "", line.strip(), flags=re.IGNORECASE)
    previous = None
    while previous != line:  # quotes, markdown and end punctuation, in any order
        previous = line
        line = line.strip().strip("\"'`*#_ \u201c\u201d").rstrip(".;:,!")
    line = " ".join(line.split())
    if len(line) > max_chars:
        line = line[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return line


def build_prompt(keyphrases: Sequence[str], quotes: Sequence[str], max_quotes: int = 5) -> str:
    """The user message: keyphrases and quotes, each redacted again."""
    lines = ["Keyphrases: " + ", ".join(_redact(str(k)) for k in keyphrases[:10]), "Examples:"]
    lines += [f"- {_redact(str(q))[:300]}" for q in list(quotes)[:max_quotes]]
    return "\n".join(lines)


@dataclass
class ChatLabeller:
    """Titles clusters through an OpenAI-compatible `/chat/completions` endpoint.

    Attributes:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key: Sent as a Bearer token when not empty; never logged.
        model: Model name the server expects.
        timeout: Seconds per request.
        max_retries: Retries on 429, 5xx and connection errors (exponential backoff).
        max_chars: Longest title kept.
        calls: Requests made (for metadata).
        failures: Clusters whose title could not be obtained.
    """

    base_url: str
    api_key: str = ""
    model: str = "gpt-4o-mini"
    timeout: float = 30.0
    max_retries: int = 2
    max_chars: int = 60
    calls: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    def __repr__(self) -> str:  # never print the key
        return f"ChatLabeller(base_url={self.base_url!r}, model={self.model!r})"

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            chat_completions_url(self.base_url), data=data, headers=headers, method="POST"
        )
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            self.calls += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                retryable = exc.code == 429 or exc.code >= 500
                if not retryable or attempt == self.max_retries:
                    raise LabellerError(f"HTTP {exc.code} from the labeller endpoint") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.max_retries:
                    raise LabellerError(f"labeller endpoint unreachable: {exc}") from exc
            except json.JSONDecodeError as exc:
                raise LabellerError("labeller endpoint did not answer JSON") from exc
            time.sleep(delay)
            delay *= 2
        raise LabellerError("unreachable")  # pragma: no cover

    def title(self, keyphrases: Sequence[str], quotes: Sequence[str]) -> str:
        """A short title for one cluster.

        Raises:
            LabellerError: When the endpoint fails or answers nothing usable.
        """
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": build_prompt(keyphrases, quotes)},
            ],
            "temperature": 0,
            "max_tokens": 24,
        }
        reply = self._post(body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LabellerError("labeller reply has no choices[0].message.content") from exc
        title = _redact(clean_title(str(content or ""), self.max_chars))
        if not title:
            raise LabellerError("labeller replied with an empty title")
        return title


def _overlap(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / max(1, len(sa | sb))


def title_clusters(
    clusters: pd.DataFrame,
    labeller: ChatLabeller,
    previous: pd.DataFrame | None = None,
    reuse_overlap: float = 0.4,
    log=logger.info,
) -> pd.DataFrame:
    """Clusters with `label` set to a title, `label_source` 'llm' where it worked.

    A cluster that kept its id keeps yesterday's title when yesterday's was a title and the
    keyphrases overlap by at least `reuse_overlap` (Jaccard); faded clusters are left as they
    are. Failures leave the keyphrase label and are counted in `labeller.failures`.

    Args:
        clusters: `feedback_clusters` rows of the day (cluster_id, keyphrases, quotes, status).
        labeller: The endpoint client.
        previous: The previous partition's rows (cluster_id, label, label_source, keyphrases).
        reuse_overlap: Keyphrase Jaccard overlap above which yesterday's title is kept.
        log: Where to report what happened.

    Returns:
        A copy of `clusters` with titles.
    """
    out = clusters.copy()
    prev = {}
    if previous is not None and len(previous) and "label_source" in previous.columns:
        for row in previous.itertuples(index=False):
            if getattr(row, "label_source", None) == "llm":
                prev[int(row.cluster_id)] = (str(row.label), as_list(row.keyphrases))
    asked = reused = 0
    for i, row in out.iterrows():
        if row["status"] == "faded":
            continue
        keys = as_list(row["keyphrases"])
        old = prev.get(int(row["cluster_id"]))
        if old is not None and row["status"] != "new" and _overlap(old[1], keys) >= reuse_overlap:
            out.at[i, "label"], out.at[i, "label_source"] = old[0], "llm"
            reused += 1
            continue
        asked += 1
        try:
            out.at[i, "label"] = labeller.title(keys, as_list(row["quotes"]))
            out.at[i, "label_source"] = "llm"
        except LabellerError as exc:
            labeller.failures += 1
            log(f"cluster {row['cluster_id']}: no title ({exc}); keeping keyphrases")
    log(
        f"titles: asked {asked}, reused {reused} from yesterday, {labeller.failures} failed "
        f"({labeller.calls} requests)"
    )
    return out
