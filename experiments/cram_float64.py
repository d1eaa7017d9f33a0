"""One cram of notebook 03's fast case (8 unseen tokens, 1 text, lr 0.05, seed 0) with the model cast to float64.

    PYTHONPATH=<package tree> python -P experiments/cram_float64.py smollm2-135m 300 float64 > OUT.json

Prints one JSON object: steps, convergence, information gain and the loss/accuracy history. Run with two package
trees (e.g. a `git archive` of the commit before a redesign, and the working tree) to tell a changed rule from
changed rounding: a changed rule shows in the first steps; rounding shows as agreement to float32 precision that
later drifts (the loss is still computed in float32: `head_logits(...).float()`). Used for issue 10 in
docs/architecture.md; `float32` as the third argument runs the model as loaded.
"""
import json
import sys

import torch

from cramlab.engine.plain import cram
from cramlab.models.load import load_model
from cramlab.models.texts import get_texts

model, steps, dtype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lm = load_model(model, device="cpu")
if dtype == "float64":
    lm.model.to(torch.float64)
text = get_texts(lm.tokenizer, "unseen", 8, n_texts=1, seed=0)[0]
r = cram(lm, [text], n_mem=1, max_steps=steps, lr=0.05, seed=0, progress=False)[0]
print(json.dumps({"dtype": dtype, "steps": r.steps, "converged": r.converged, "info_gain_bits": r.info_gain_bits,
                  "final_ce_nats": r.final_ce_nats, "acc": r.teacher_forced_accuracy, "history": r.history}))
