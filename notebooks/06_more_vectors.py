# ---
# jupyter:
#   cramlab:
#     fast_parameters:
#       lr: 0.05
#       max_steps: 100
#       n_mems:
#       - 1
#       - 2
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
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | 8 min / 53 s | 2-3 minutes | 03, 04 |
#
# **After this notebook you will be able to:**
# - cram the same text into 1, 2, 4 ... vectors and compare
# - compute the capacity of several vectors
# - read the paper's scaling: Max grows about linearly with the number of vectors

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
explorer = widgets.capacity_controls("smollm2-135m", "bfloat16", max(n_mems))
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
# (or converges in fewer steps). The paper's scaling, measured as Max:

# %%
capacities = {lm.spec.name: {k: capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens_exact
                             for k in (1, 2, 4, 8, 16)}}
ours = {r["n_mem"]: r["decoded_tokens"] for r in rows}
plots.tokens_vs_n_mem_chart(ours=ours, paper=MULTI_VECTOR_MAX_TOKENS, capacity=capacities,
                            ours_label=f"ours: tokens right of {n_tokens}")

# %%
for name, series in MULTI_VECTOR_MAX_TOKENS.items():
    print(f"{name:<13} " + "  ".join(f"k={k}: {v}" for k, v in series.items()))

# %% [markdown]
# ## Recap
# - k vectors have k times the capacity; in the paper Max grew about linearly too (Llama-3.2-1B:
#   512 tokens with one vector, 7168 with sixteen).
# - With more vectors, the same text trains faster and further.
#
# ## Exercises
# 1. Llama-3.2-1B held 7168 tokens in 16 vectors. How many tokens per vector is that?

# %%
answer_1 = ...
exercises.check_compression_ratio(7168, 16, answer_1);

# %% [markdown]
# 2. Does Max grow roughly linearly with the number of vectors in the paper? (`"yes"` or `"no"`)

# %%
answer_2 = ...
exercises.check_scaling(answer_2);

# %% [markdown]
# <details><summary>Solutions (try first)</summary>
#
# 1. `answer_1 = 7168 / 16` (448)
# 2. `"yes"` (up to 8 vectors exactly doubling, then a little less)
#
# </details>
