# ---
# jupyter:
#   cramlab:
#     fast_parameters:
#       lr: 0.1
#       max_steps: 80
#       n_mems:
#       - 1
#       - 2
#       - 4
#       n_tokens: 24
#     smoke_parameters:
#       max_steps: 3
#       model: tiny-llama
#       n_mems:
#       - 1
#       - 2
#       n_tokens: 6
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 06 · More vectors
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/cramlab/blob/main/notebooks/06_more_vectors.ipynb)
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | full: 8 min (2026-11-28) / fast: 2 min 7 s (127 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 41 s, 2026-11-28 | 03, 04 |
#
# **After this notebook you will be able to:**
# - cram the same text into 1, 2, 4 ... vectors and compare
# - compute the capacity of several vectors
# - read the paper's scaling: Max grows about linearly with the number of vectors

# %%
# On Google Colab only: install the kit (elsewhere `make install` has done it). Detected, not asked.
import sys

if "google.colab" in sys.modules:
    import subprocess

    KIT = "cramlab[lab] @ git+https://github.com/OWNER/cramlab"   # the kit's repository
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

# %%
from cramlab import exercises, plots, widgets
from cramlab.capacity import capacity
from cramlab.cram import cram
from cramlab.models import load_model
from cramlab.notebook_runner import Recorder
from cramlab.paper import MULTI_VECTOR_MAX_TOKENS
from cramlab.texts import get_texts

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"
n_mems = [1, 2, 4]      # numbers of vectors to try
n_tokens = 64           # one length, longer than one vector holds in the budget
n_texts = 1
source = "unseen"
max_steps = 600
lr = 2e-2
seed = 0
fast = False
record_path = ""

# %% [markdown]
# ## 1. Capacity of k vectors
#
# k vectors store k times the bits: L_max grows linearly. Try it with the number-of-vectors control:

# %%
record = Recorder(record_path)
explorer_model = model if model in widgets.MODEL_CHOICES else widgets.EMBEDDED   # the `model` parameter
if explorer_model != model:
    print(f"{model} is not in the capacity registry: the explorer starts at {explorer_model}")
explorer = widgets.capacity_controls(explorer_model, "bfloat16", max(n_mems))
explorer.show();

# %% [markdown]
# ## 2. The same text in 1, 2, 4 ... vectors

# %%
lm = load_model(model)
texts = get_texts(lm.tokenizer, source, n_tokens, n_texts=n_texts, seed=seed)
print(f"{len(texts)} {source} text(s) of {n_tokens} tokens: {texts[0].text[:80]!r}...")
results = {k: cram(lm, texts, n_mem=k, max_steps=max_steps, lr=lr, seed=seed, progress=False) for k in n_mems}

# %%
rows = [dict(n_mem=k, capacity=capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens,
             accuracy=sum(r.teacher_forced_accuracy for r in rs) / len(rs),
             converged=sum(r.converged for r in rs), greedy_exact=sum(bool(r.greedy_exact) for r in rs),
             steps=sum(r.steps for r in rs) / len(rs),
             info_gain_bits=sum(r.info_gain_bits for r in rs) / len(rs),
             decoded_tokens=sum(r.teacher_forced_accuracy * r.n_tokens for r in rs) / len(rs))
        for k, rs in results.items()]
print(plots.text_table(rows, ["n_mem", "capacity", "accuracy", "converged", "greedy_exact", "steps",
                              "info_gain_bits", "decoded_tokens"],
                       formats={"accuracy": ".3f", "steps": ".0f", "info_gain_bits": ".1f",
                                "decoded_tokens": ".1f"},
                       headers={"capacity": "L_max", "info_gain_bits": "IG bits",
                                "decoded_tokens": "tokens right"}))
record("accuracy_by_n_mem", {r["n_mem"]: r["accuracy"] for r in rows})
record("steps_by_n_mem", {r["n_mem"]: r["steps"] for r in rows})
record("info_gain_bits_by_n_mem", {r["n_mem"]: r["info_gain_bits"] for r in rows})

# %% [markdown]
# More vectors give the optimiser more room: at a fixed budget the same text reaches a higher accuracy
# (or converges in fewer steps). The paper's scaling is measured as **Max** (the longest length whose texts
# fit, searched over a grid of lengths); our column "tokens right" is a different quantity: teacher-forced
# tokens right out of one fixed length (`n_tokens`), so it can never exceed that length. The two go on separate
# charts. The paper's Max beside the theoretical capacities:

# %%
capacities = {lm.spec.name: {k: capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens_exact
                             for k in (1, 2, 4, 8, 16)}}
plots.tokens_vs_n_mem_chart(paper=MULTI_VECTOR_MAX_TOKENS, capacity=capacities,
                            title="The paper's Max (PG-19) and capacities vs number of vectors")

# %% [markdown]
# This run: tokens right (teacher-forced) out of the fixed length, per number of vectors.

# %%
ours = {r["n_mem"]: r["decoded_tokens"] for r in rows}
fig = plots.tokens_vs_n_mem_chart(ours=ours, ours_label=f"this run: tokens right of {n_tokens}",
                                  title=f"This run: tokens right out of {n_tokens} (capped at {n_tokens})")
fig.add_hline(y=n_tokens, line_dash="dash", annotation_text=f"the text's length, {n_tokens}")
fig

# %%
for name, series in MULTI_VECTOR_MAX_TOKENS.items():
    print(f"{name:<13} " + "  ".join(f"k={k}: {v}" for k, v in series.items()))

# %% [markdown]
# ## Recap
# - k vectors have k times the capacity; in the paper Max grew about linearly too (Llama-3.2-1B: 512 tokens
#   with one vector, 7168 with sixteen; Pythia-160M: 80 with one, 1280 with sixteen).
# - With more vectors, the same text trains faster and further.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~1 min
# Llama-3.2-1B held 7168 tokens in 16 vectors. How many tokens per vector is that?

# %%
answer_1 = ...
exercises.check_compression_ratio(7168, 16, answer_1);

# %% [markdown]
# ### Exercise 2 · ★★☆ · ~4 min
# Look at the paper's figures printed above (`MULTI_VECTOR_MAX_TOKENS`). Does Max grow roughly linearly with
# the number of vectors (tokens per vector within a factor 2 of one vector's)? (`"yes"` or `"no"`) Does it
# double exactly at every step for both models?

# %%
answer_2 = ...
exercises.check_scaling(answer_2);

# %% [markdown]
# ## Solutions
#
# Try the exercises first. Each cell below runs a reference answer through the same check (its code is
# collapsed: click the bar to open it).

# %% tags=["solution"] jupyter={"source_hidden": true}
# Exercise 1: tokens / vectors (448)
answer_1 = 7168 / 16
exercises.check_compression_ratio(7168, 16, answer_1);

# %% tags=["solution"] jupyter={"source_hidden": true}
# Exercise 2: tokens per vector for every k, relative to one vector's
for name, series in MULTI_VECTOR_MAX_TOKENS.items():
    per_vector = {k: v / k / series[1] for k, v in series.items()}
    print(name, {k: round(x, 2) for k, x in per_vector.items()})
answer_2 = "yes" if all(0.5 <= x <= 2 for s in MULTI_VECTOR_MAX_TOKENS.values()
                        for x in (v / k / s[1] for k, v in s.items())) else "no"
exercises.check_scaling(answer_2);
# Exact doubling: Llama-3.2-1B from 1 to 8 vectors only (512 -> 4096, then 7168 at 16);
# Pythia-160M never (80 -> 192 -> 384 -> 640 -> 1280).

# %% [markdown]
# ## Next
#
# **Next: [07 · At scale on a GPU](07_gpu_scale.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
