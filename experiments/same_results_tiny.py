"""Same results before and after a refactor: tiny models x three presets x plain/fast cram, and progressive.

Usage: python experiments/same_results_tiny.py OUT.json   (run once with each checkout's package, then `cmp` the
two files). Imports only the front door, so the same script runs before and after a move of modules. Records, per
case, each text's steps, teacher-forced accuracy, the sum of its vectors (6 decimals) and its greedy decode, and
the longest length of progressive cramming. Used for issue 27's folder move (docs/architecture.md)."""
import json
import sys

from cramlab import CramSettings, cram, get_texts, load_model, progressive

out = {}
for mname in ("tiny-llama", "tiny-gptneox"):
    lm = load_model(mname)
    texts = get_texts(lm.tokenizer, "unseen", 12, n_texts=3, seed=1)
    for preset in ("kit", "grid-2025", "progressive-2026"):
        for engine in ("plain", "fast"):
            s = CramSettings.from_preset(preset).replace(engine=engine, max_steps=60, seed=3)
            rs = cram(lm, texts, s, progress=False)
            out[f"{mname}/{preset}/{engine}/cram"] = [[r.steps, r.teacher_forced_accuracy, round(float(r.vectors.double().sum()), 6), r.decoded_text] for r in rs]
        s = CramSettings.from_preset(preset).replace(engine="plain", max_steps=40, seed=3)
        summ = progressive(lm, texts, s, max_tokens=12)
        out[f"{mname}/{preset}/progressive"] = [t.to_dict().get("longest_tokens") for t in summ.texts]
json.dump(out, open(sys.argv[1], "w"), indent=0, default=str)
print(len(out), "entries")
