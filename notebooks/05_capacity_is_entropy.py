# ---
# jupyter:
#   cramlab:
#     fast_parameters:
#       lengths:
#       - 24
#       lr: 0.05
#       max_steps: 80
#       n_texts: 2
#     smoke_parameters:
#       lengths:
#       - 6
#       max_steps: 3
#       model: tiny-llama
#       n_texts: 1
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 05 · Capacity is entropy, not length
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |
# |---|---|---|---|
# | 3 of 3 | 10 min / 52 s | 1-2 minutes | 02, 04 |
#
# **After this notebook you will be able to:**
# - measure the information gain of crammed vectors on natural and random text
# - draw the paper's slope-1 plot: CE with the vector against CE without it
# - predict how long a text fits from its cross-entropy

# %%
from cramlab import exercises, plots
from cramlab.cram import cram
from cramlab.models import load_model
from cramlab.notebook_runner import Recorder
from cramlab.texts import get_texts

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"
lengths = [32, 64]              # long enough that many texts do not fit
n_texts = 2                     # per source and length
sources = ["unseen", "random"]
max_steps = 400
lr = 2e-2
seed = 0
fast = False
record_path = ""

# %% [markdown]
# ## 1. Cram texts that do not fit
#
# The paper's finding: on texts too long to fit, the vector removes about the **same number of nats**
# C from every text, whatever its length or kind: CE_mem = CE_orig - C, a line of slope 1.
# We cram unseen and random texts of a few lengths (all texts of a length train together in one batch).

# %%
record = Recorder(record_path)
lm = load_model(model)
texts = [t for src in sources for n in lengths
         for t in get_texts(lm.tokenizer, src, n, n_texts=n_texts, seed=seed)]
results = cram(lm, texts, max_steps=max_steps, lr=lr, seed=seed, progress=False)
points = [r.to_dict() | {"source": t.source} for t, r in zip(texts, results)]
print(plots.text_table(points, ["source", "n_tokens", "teacher_forced_accuracy", "baseline_ce_nats",
                                "final_ce_nats", "info_gain_nats", "steps"],
                       formats={"teacher_forced_accuracy": ".3f", "baseline_ce_nats": ".1f",
                                "final_ce_nats": ".1f", "info_gain_nats": ".1f"},
                       headers={"teacher_forced_accuracy": "accuracy", "baseline_ce_nats": "CE without",
                                "final_ce_nats": "CE with", "info_gain_nats": "gain (nats)"}))

# %% [markdown]
# ## 2. The slope-1 plot

# %%
slope, intercept = plots.fit_line([p["baseline_ce_nats"] for p in points], [p["final_ce_nats"] for p in points])
gain = plots.constant_gain_nats(points)
n_not_fit = sum(not p["converged"] for p in points)
print(f"{n_not_fit} of {len(points)} texts did not fit; on them the vector removed "
      f"C = {gain:.1f} nats on average")
print(f"least-squares line through all texts: CE_with = {slope:.2f} * CE_without + {intercept:.1f}")
record("constant_gain_nats", gain)
record("slope", slope)
record("n_not_fit", n_not_fit)
for src in sources:
    gains = [p["info_gain_nats"] for p in points if p["source"] == src]
    record(f"{src}_mean_gain_nats", sum(gains) / len(gains))
plots.info_gain_scatter(points)

# %% [markdown]
# If the vectors were trained to their limit, the filled circles (texts that did not fit) lie near the
# solid line of slope 1 and random texts remove about as many nats as natural ones: the vector holds a
# fixed amount of *information*, not of tokens. With a short budget (`fast` mode) they are not at their
# limit yet and the slope can differ; raise `max_steps` to see the law appear.
#
# ## 3. From entropy to length
#
# If a vector removes C nats, a text fits while its cross-entropy stays below C; a text costing h nats
# per token therefore fits about C / h tokens:

# %%
for src in sources:
    per_token = [p["baseline_ce_per_token_nats"] for p in points if p["source"] == src]
    h = sum(per_token) / len(per_token)
    print(f"{src:<7} {h:.2f} nats per token -> about {gain / h:5.1f} tokens fit in one vector")
    record(f"{src}_predicted_tokens", gain / h)

# %% [markdown]
# ## Recap
# - Information gain = CE without the vector - CE with it; on texts that do not fit it is about constant.
# - Random text costs more nats per token, so fewer tokens fit: the limit is entropy, not length.
# - The paper saw the same C within a model across PG-19, fan fiction and random words.
#
# ## Exercises
# 1. A text costs 500 nats without the vector. On the slope-1 line with the `gain` measured above, how many
#    nats does it cost with the vector? (never below 0)

# %%
answer_1 = ...
exercises.check_remaining_ce(500.0, gain, answer_1);

# %% [markdown]
# 2. How many tokens of a text costing 2.5 nats per token fit in a vector that removes `gain` nats?

# %%
answer_2 = ...
exercises.check_longest_text(gain, 2.5, answer_2);

# %% [markdown]
# <details><summary>Solutions (try first)</summary>
#
# 1. `answer_1 = max(0.0, 500.0 - gain)`
# 2. `answer_2 = gain / 2.5`
#
# </details>
