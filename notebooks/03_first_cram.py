# ---
# jupyter:
#   cramlab:
#     fast_parameters:
#       layout_max_steps: 60
#       lr: 0.05
#       max_steps: 300
#       n_tokens: 8
#     smoke_parameters:
#       layout_max_steps: 3
#       max_steps: 3
#       model: tiny-llama
#       n_tokens: 6
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 03 · First cram: one text into one vector, and back again
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |
# |---|---|---|---|
# | 2 of 3 | 3 min / 48 s | 1-2 minutes | 00-02 |
#
# **After this notebook you will be able to:**
# - cram a text into one vector and watch the loss and accuracy live
# - decode the vector back with greedy generation and check it reproduces the text
# - tell teacher-forced accuracy from greedy reproduction
# - explain why the vector needs a fixed token before it in SmolLM2 (sink-first layout)

# %%
from IPython.display import display

from cramlab import exercises, plots, widgets
from cramlab.cram import cram
from cramlab.decode import decode
from cramlab.models import load_model
from cramlab.notebook_runner import Recorder
from cramlab.texts import get_texts

# %% [markdown]
# *The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
# Change them here to run a bigger or smaller experiment.*

# %% tags=["parameters"]
model = "smollm2-135m"
n_tokens = 16            # text length
source = "unseen"        # "unseen" or "random"
n_mem = 1                # number of trained vectors
max_steps = 1500
lr = 1e-2                # the paper's learning rate (AdamW)
seed = 0
early_target = 0.85      # the "stopped early" run stops at this teacher-forced accuracy
layout_max_steps = 400   # budget of the mem-first layout run
fast = False
record_path = ""

# %% [markdown]
# ## 1. Choose what to cram

# %%
record = Recorder(record_path)
controls = widgets.cram_controls(model, n_tokens, source, n_mem)
controls.show();

# %% [markdown]
# *Change the controls, then run the next cell: it reads their values (without a front end, the parameters above).*

# %%
choice = controls.values()
model, n_tokens, source, n_mem = choice["model"], choice["n_tokens"], choice["source"], choice["n_mem"]
lm = load_model(model)
text = get_texts(lm.tokenizer, source, n_tokens, n_texts=1, seed=seed)[0]
print(f"{text.text_id} ({text.n_tokens} tokens): {text.text!r}")
record("n_tokens", n_tokens)
record("text_id", text.text_id)

# %% [markdown]
# ## 2. Cram it
#
# The inputs are `[<|endoftext|>] [mem] [t_1 ... t_N]`. Only `mem` (one vector of `d` numbers) is
# trained, with AdamW, to make the frozen model predict every token: the position of `mem` predicts
# t_1, t_1 predicts t_2, and so on. Training stops when all N predictions are right.

# %%
live = plots.LiveCramPlot(f"{n_tokens} tokens into {n_mem} vector(s) of {lm.spec.name}", max_steps)
display(live.figure)

# %%
result = cram(lm, [text], n_mem=n_mem, max_steps=max_steps, lr=lr, seed=seed, callback=live.update,
              progress=False)[0]
print(f"stopped: {result.stop_reason} after {result.steps} steps ({result.seconds:.1f} s)")
print(f"teacher-forced accuracy {result.teacher_forced_accuracy:.3f} "
      f"(without the vector: {result.baseline_accuracy:.3f})")
print(f"cross-entropy {result.baseline_ce_nats:.1f} -> {result.final_ce_nats:.2f} nats; "
      f"information gain {result.info_gain_bits:.1f} bits")
for key in ("converged", "steps", "teacher_forced_accuracy", "baseline_ce_nats", "info_gain_bits"):
    record(key, getattr(result, key))

# %% [markdown]
# ## 3. Back again
#
# Now give the model **only** the vector (after the fixed first token) and let it generate greedily,
# N tokens, each fed back as the next input.

# %%
decoded = decode(lm, result.vectors, n_tokens)
exact = decoded.token_ids == text.token_ids
print(f"original: {text.text!r}")
print(f"decoded : {decoded.text!r}")
print(f"greedy decoding reproduces the text exactly: {exact}")
record("greedy_exact", exact)

# %% [markdown]
# ## 4. Teacher-forced accuracy is not reproduction
#
# During training the model always sees the *true* previous tokens (teacher forcing). Greedy decoding
# feeds back its *own* output: one wrong token early changes everything after it. Stop a run before it
# is perfect, at a teacher-forced accuracy of `early_target`, and compare:

# %%
early = cram(lm, [text], n_mem=n_mem, max_steps=max_steps, lr=lr, seed=seed, target_accuracy=early_target,
             check_every=1, progress=False)[0]
print(f"teacher-forced accuracy {early.teacher_forced_accuracy:.3f} after {early.steps} steps")
print(f"greedy exact: {early.greedy_exact}; first wrong token at position {early.first_mismatch}")
print(f"decoded : {early.decoded_text!r}")
record("early_target", early_target)
record("early_teacher_forced_accuracy", early.teacher_forced_accuracy)
record("early_greedy_exact", early.greedy_exact)

# %% [markdown]
# ## 5. Where the vector goes: sink-first vs mem-first
#
# The paper puts the vector first (`mem-first`). In SmolLM2, position 0 is an **attention sink**: its
# hidden state grows huge and its output is nearly the same whatever the input, so a vector there can
# barely steer the first prediction. With a fixed `<|endoftext|>` token first (`sink-first`, the default
# here) the sink is that token and the vector is free to work. Same text, same seed:

# %%
mem_first = cram(lm, [text], n_mem=n_mem, max_steps=layout_max_steps, lr=lr, seed=seed, layout="mem-first",
                 progress=False)[0]
rows = [dict(layout=name, steps=r.steps, accuracy=r.teacher_forced_accuracy, converged=r.converged,
             greedy_exact=r.greedy_exact, first_wrong=r.first_mismatch)
        for name, r in (("sink-first", result), ("mem-first", mem_first))]
print(plots.text_table(rows, ["layout", "steps", "accuracy", "converged", "greedy_exact", "first_wrong"],
                       formats={"accuracy": ".3f"}))
record("mem_first_accuracy", mem_first.teacher_forced_accuracy)
record("mem_first_first_mismatch", mem_first.first_mismatch)

# %%
plots.history_chart({"sink-first": result.history, "mem-first": mem_first.history}, title="Teacher-forced accuracy by layout")

# %% [markdown]
# Expect the mem-first run to trail behind, and its greedy output to go wrong at position 0 (`first_wrong`
# = 0): the first token is predicted by the vector's own position, which is the sink and ignores its input.
# Given many more steps it gets most later tokens right, but the first one stays wrong.
#
# ## Recap
# - Cramming trains only the input vector; the frozen model then reproduces the text from it alone.
# - Converged (teacher-forced 100 %) vectors decode back exactly with greedy generation; stopped early,
#   they usually do not.
# - In SmolLM2 the vector needs a fixed token before it: position 0 is an attention sink.
#
# ## Exercises
# 1. How many **bits** of information did the vector add? Use `result.baseline_ce_nats` and
#    `result.final_ce_nats` (total cross-entropy without and with the vector, in nats).

# %%
import math
answer_1 = ...
exercises.check_info_gain_bits(answer_1, result);

# %% [markdown]
# 2. Can a vector have high teacher-forced accuracy while greedy decoding gets the first token wrong? (`"yes"` or `"no"`)

# %%
answer_2 = ...
exercises.check_greedy_after_first_miss(answer_2);

# %% [markdown]
# 3. Which layout lets one vector steer SmolLM2? (`"sink-first"` or `"mem-first"`)

# %%
answer_3 = ...
exercises.check_layout_that_steers(answer_3);

# %% [markdown]
# <details><summary>Solutions (try first)</summary>
#
# 1. `answer_1 = (result.baseline_ce_nats - result.final_ce_nats) / math.log(2)`
# 2. `"yes"`: teacher forcing gives every position the true prefix; greedy decoding does not.
# 3. `"sink-first"`
#
# </details>
