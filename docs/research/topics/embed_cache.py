"""Embed the real sets once with the project's int8 MiniLM; cache as .npy (+ labels/texts)."""
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from feedback_pipelines.embedding import get_embedder, interaction_text

REAL = Path("/work/shared/data/real")
OUT = Path(__file__).resolve().parent / "cache"
OUT.mkdir(exist_ok=True)

def varied_sets():
    fqa, oa, lamp = [], [], []
    for path in sorted((REAL / "feedbackqa").glob("*.json")):
        for item in json.loads(path.read_text()):
            for c in item.get("feedback", []):
                fqa.append(interaction_text(item["question"], c))
    with (REAL / "oasst" / "en_100_tree.jsonl").open() as h:
        for line in h:
            stack = [json.loads(line)["prompt"]]
            while stack:
                m = stack.pop()
                for r in m.get("replies", []):
                    if m.get("role") == "prompter":
                        oa.append(interaction_text(m["text"], None, r["text"]))
                    stack.append(r)
    for path in sorted((REAL / "lamp").glob("*_edits.json")):
        for item in json.loads(path.read_text()):
            for e in item.get("fine_grained_edits", []):
                lamp.append(interaction_text(item["instruction"], e.get("categorization"), e.get("editedText")))
    return {"feedbackqa": fqa, "oasst": oa, "lamp": lamp}

def main():
    emb = get_embedder()
    print(emb.model_id, flush=True)
    jobs = {}
    for split in ("test", "train"):
        df = pd.read_csv(REAL / "banking77" / f"{split}.csv")
        jobs[f"banking77_{split}"] = (df["text"].astype(str).tolist(), df["category"].astype(str).tolist())
    for name, texts in varied_sets().items():
        texts = list(dict.fromkeys(t for t in texts if t))
        jobs[name] = (texts, None)
    for name, (texts, labels) in jobs.items():
        f = OUT / f"{name}.npy"
        if f.exists():
            continue
        t = time.perf_counter()
        v = emb.embed(texts).astype(np.float32)
        np.save(f, v)
        (OUT / f"{name}.json").write_text(json.dumps({"texts": texts, "labels": labels}))
        print(f"{name}: {len(texts)} texts in {time.perf_counter()-t:.0f}s", flush=True)

if __name__ == "__main__":
    main()
