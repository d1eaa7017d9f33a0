# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       hand_steps: 3
#       layout_max_steps: 3
#       max_steps: 3
#       model: tiny-llama
#       n_tokens: 6
#       own_text_max_steps: 2
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
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 2 of 3 | full: 4 min 29 s (269 s Run All; alone, 2026-12-06, `docs/data/notebooks_full_cpu_03-09_2026-12-06.json`) / fast: 2 min 1 s (121 s, two notebooks at a time, one thread each), 2026-11-29 | one H200, full size: 41 s, 2026-11-28 | 00-02 |
#
# **After this notebook you will be able to:**
# - cram a text into one vector and watch the loss and accuracy live
# - decode the vector back with greedy generation and check it reproduces the text
# - tell teacher-forced accuracy from greedy reproduction
# - write the cramming loop yourself and check it against the kit's `cram()`
# - compare where the vector goes (sink-first vs mem-first) at the same step budget

# %%
from IPython.display import display

from cramlab import cram, decode, get_texts, load_model
from cramlab.lab import exercises, plots, widgets
from cramlab.lab.notebook_runner import Recorder

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
n_tokens = 16            # text length
source = "unseen"        # "unseen" or "random"
n_mem = 1                # number of trained vectors
max_steps = 1500
lr = 1e-2                # the paper's learning rate (AdamW)
seed = 0
early_target = 0.85      # the "stopped early" run stops at this teacher-forced accuracy
layout_max_steps = 400   # step budget of both layouts in the layout comparison
hand_steps = 30          # steps of your own loop (and of cram() beside it) in section 2
own_text = "The red umbrella is by the door."   # section 7: your own sentence (the box starts with it)
own_text_max_steps = 300                         # its step budget (lr 0.1)
fast = False             # True: the seconds-to-minutes budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    n_tokens, max_steps, lr = 8, 300, 0.1
    hand_steps, layout_max_steps, own_text_max_steps = 10, 60, 150

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
# ## 2. Write the loop yourself
#
# Before using the kit's `cram()`, write its heart. The inputs are `[<|endoftext|>] [mem] [t_1 ... t_N]`:
# a fixed first token (the *[sink](00_welcome.ipynb#sink)*, see section 6), the trainable vector, then the text's
# token embeddings.
# Only `mem` is trained; the model stays frozen.
#
# ### Exercise 1 · ★★☆ · ~20 min
# Complete `my_cram` (about 20 lines) for the first 8 tokens of the text:
# 1. `mem = torch.nn.Parameter(start.clone())`, one vector of shape (1, 1, d), and
#    `torch.optim.AdamW([mem], lr=lr, betas=(0.9, 0.9), weight_decay=0.01)` (the paper's optimiser);
# 2. every step, concatenate `[sink_emb, mem, text_emb]` along dim 1 and run the frozen model on them with
#    `lm.model(inputs_embeds=...)`; cast `mem` to `text_emb.dtype` first;
# 3. the vector's position (1) predicts t_1, t_1 predicts t_2, ...: score the logits at positions 1 .. 8
#    against `targets` with `F.cross_entropy` (mean over the tokens, in nats) - the `pc` protocol;
# 4. accuracy = the share of those positions whose argmax is the right token (teacher-forced);
# 5. append `[loss.item(), accuracy]` to the history **before** the optimiser step, then `backward()`,
#    `step()`, `zero_grad()`.
#
# The check runs `cram()` from the same start, on the same tokens, for the same number of steps, and
# compares the two trajectories step by step.

# %%
import torch
import torch.nn.functional as F  # noqa: F401 - for your loop (F.cross_entropy)

n_hand = min(8, len(text.token_ids))
targets = torch.tensor([text.token_ids[:n_hand]], device=lm.spec.device)          # (1, n): t_1 .. t_n
embed = lm.model.get_input_embeddings()
with torch.no_grad():
    text_emb = embed(targets)                                                      # (1, n, d), frozen
    sink_emb = embed(torch.tensor([[lm.spec.sink_token_id]], device=lm.spec.device))  # (1, 1, d)
    std = embed.weight.float().std()
# the paper's start: randn * std(embedding matrix), seeded
start = torch.randn(1, 1, lm.spec.d, generator=torch.Generator().manual_seed(seed)).to(lm.spec.device) * std
print(f"{n_hand} tokens: {lm.tokenizer.decode(targets[0])!r}; start vector norm {start.norm():.2f}")


# %%
def my_cram(start, text_emb, sink_emb, targets, steps, lr):
    """Return [[loss, accuracy], ...]: one pair per step, measured before the optimiser step."""
    history = []
    ...   # your loop here
    return history


my_history = my_cram(start, text_emb, sink_emb, targets, hand_steps, lr)
reference = cram(lm, [targets[0].tolist()], init_vectors=start[0], max_steps=hand_steps, lr=lr,
                 check_every=1, engine="plain", decode=False, progress=False)[0]   # history at every step
exercises.check_own_loop(my_history, reference);

# %% [markdown]
# ## 3. Cram it with the kit
#
# `cram()` runs the same loop for every text of a batch, stops a text when all N predictions are right, and
# keeps the best vector. Scoring every token, the vector's position predicting t_1, is the
# [`pc` protocol](00_welcome.ipynb#pc-hc)
# (the progressive-cramming code's); the paper's own code (`hc`) never scores t_1 and needs it as a prompt
# when decoding (`cram(..., protocol="hc")`).

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
# ## 4. Back again
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
# ## 5. Teacher-forced accuracy is not reproduction
#
# During training the model always sees the *true* previous tokens
# ([teacher forcing](00_welcome.ipynb#teacher-forcing)). [Greedy decoding](00_welcome.ipynb#greedy-decoding) feeds
# back its *own* output. If greedy decoding reproduces the text, every position saw the true prefix and
# predicted its token: **greedy-exact implies 100 % teacher-forced accuracy**, so below 100 % greedy decoding
# is never exact. What matters is how a miss *cascades*: after the first wrong token, every later position
# reads a prefix the vector was never trained on. Stop a run early, at a teacher-forced accuracy of
# `early_target`, and compare the greedy output token by token:

# %%
early = cram(lm, [text], n_mem=n_mem, max_steps=max_steps, lr=lr, seed=seed, target_accuracy=early_target,
             check_every=1)[0]   # a progress bar while it trains
print(f"teacher-forced accuracy {early.teacher_forced_accuracy:.3f} after {early.steps} steps")
print(f"greedy exact: {early.greedy_exact}; first wrong token at position {early.first_mismatch}")
print(f"decoded : {early.decoded_text!r}")
greedy_early = decode(lm, early.vectors, len(text.token_ids))
same = [a == b for a, b in zip(greedy_early.token_ids, text.token_ids)]
miss = early.first_mismatch
if miss is None:
    print("this early vector already decodes exactly (it reached 100 %): lower early_target to see a miss")
else:
    after = same[miss + 1:]
    after_share = sum(after) / len(after) if after else None
    print(f"greedy token accuracy: {sum(same) / len(same):.0%} overall; first miss at position {miss}; "
          + (f"after it, {after_share:.0%} of the remaining {len(after)} tokens are right" if after else
             "it is the last token"))
    record("early_greedy_accuracy_after_miss", after_share)
record("early_target", early_target)
record("early_teacher_forced_accuracy", early.teacher_forced_accuracy)
record("early_greedy_exact", early.greedy_exact)

# %% [markdown]
# ## 6. Where the vector goes: sink-first vs mem-first
#
# The paper puts the vector first (`mem-first`). In SmolLM2, position 0 behaves as an **attention sink**:
# many heads attend to it and its hidden state grows very large in the middle layers. The kit's default,
# `sink-first`, puts a fixed `<|endoftext|>` token there and the vector behind it. What does position 0
# cost the vector? The recorded GPU runs below (`cramlab reproduce --paper 2026`: the follow-up paper's
# preset, 50 texts, three seeds; the cell prints their card and date) separate two things:
# with t_1 given as a prompt and not scored (`hc`) the vector only has to steer the rest of the text; with
# every token scored (`pc`) it must also predict t_1 and the first tokens from position 0. Compare the two
# ratios the cell prints: most of the handicap sits in predicting the first tokens from position 0, far less in
# steering the rest. (This sink is a *position*; notebook 08 measures a different thing under a similar name: how much
# attention the text pays *to the vector*.)

# %%
from cramlab.lab.recorded import print_layout_comparison

held = print_layout_comparison()   # docs/data/reproduce/tables_2026.json: {(layout, protocol): row}

# %% [markdown]
# A handicap, not a wall. On your CPU, at a small budget: same text, same seed, the same budget of
# `layout_max_steps` steps for both layouts (the sink-first run of section 3 is reused when it stopped
# within that budget, else it runs again with that budget):

# %%
mem_first = cram(lm, [text], n_mem=n_mem, max_steps=layout_max_steps, lr=lr, seed=seed, layout="mem-first")[0]
# equal budgets by the real step counts: the history is only sampled every `check_every` steps, so a run
# that stopped at step 340 must count with its final vector, not with its last sampled accuracy
sink_first = result if result.steps <= layout_max_steps else cram(
    lm, [text], n_mem=n_mem, max_steps=layout_max_steps, lr=lr, seed=seed, layout="sink-first")[0]
rows = [dict(layout=name, steps=r.steps, accuracy=r.teacher_forced_accuracy, converged=r.converged,
             greedy_exact=r.greedy_exact, first_wrong=r.first_mismatch)
        for name, r in (("sink-first", sink_first), ("mem-first", mem_first))]
print(plots.text_table(rows, ["layout", "steps", "accuracy", "converged", "greedy_exact", "first_wrong"],
                       formats={"accuracy": ".3f"}))
record("mem_first_accuracy", mem_first.teacher_forced_accuracy)
record("mem_first_first_mismatch", mem_first.first_mismatch)
accuracy_at_budget = {"sink-first": sink_first.teacher_forced_accuracy,
                      "mem-first": mem_first.teacher_forced_accuracy}
steps_at_budget = {"sink-first": sink_first.steps, "mem-first": mem_first.steps}
print(f"\nwithin {layout_max_steps} steps: " + ", ".join(
    f"{k} {accuracy_at_budget[k]:.3f} in {steps_at_budget[k]} steps" for k in accuracy_at_budget))
record("accuracy_at_equal_budget", accuracy_at_budget)
record("steps_at_equal_budget", steps_at_budget)

# %%
plots.history_chart({"sink-first": sink_first.history, "mem-first": mem_first.history}, title="Teacher-forced accuracy by layout")

# %% [markdown]
# ## 7. Your own text
#
# Type a sentence into the box and press the button: the kit crams its first tokens (at most 32, so that a
# CPU answers in a minute or two) into one vector at the follow-up paper's lr 0.1, decodes it back and puts
# the bytes side by side. The cell also runs once with `own_text`, so its figures exist without a front end.

# %%
own = widgets.OwnText(lm, own_text, max_steps=own_text_max_steps, lr=0.1, seed=seed)
own.show()
own_figures = own.run()
for key in ("n_tokens", "greedy_exact", "accuracy", "utf8_bytes", "token_id_bytes", "vector_bytes_bf16"):
    record(f"own_text_{key}", own_figures[key])

# %% [markdown]
# Compare the bytes printed above: for a sentence this short, one bfloat16 vector takes far more bytes than
# the text. The paper's "x1568" counts token positions per vector, not bytes (notebook 01 does the byte
# arithmetic for its largest model).
#
# ## Recap
# - Cramming trains only the input vector (your own loop in section 2 is the whole method); the frozen model
#   then reproduces the text from it alone.
# - Greedy-exact implies 100 % teacher-forced accuracy; below 100 % greedy decoding is never exact, and one
#   early miss spoils the tokens after it.
# - In SmolLM2 position 0 behaves as an attention sink; the kit puts a fixed token before the vector
#   (sink-first). The recorded runs printed in section 6 put most of the handicap of position 0 in predicting
#   t_1 and the first tokens, far less in steering the rest; this run's comparison at equal budgets is printed there.
#
# ## Exercises
#
# Exercise 1 (your own loop) is in section 2.
#
# ### Exercise 2 · ★☆☆ · ~3 min
# How many **bits** of information did the vector add? Use `result.baseline_ce_nats` and
# `result.final_ce_nats` (total cross-entropy without and with the vector, in nats).

# %%
import math  # noqa: F401 - for your answer

answer_2 = ...
exercises.check_info_gain_bits(answer_2, result);

# %% [markdown]
# ### Exercise 3 · ★☆☆ · ~2 min
# The early-stopped vector of section 5 has teacher-forced accuracy `early.teacher_forced_accuracy`. Does
# greedy decoding from it reproduce the text exactly? (`"yes"` or `"no"`)

# %%
answer_3 = ...
exercises.check_greedy_exact(answer_3, early);

# %% [markdown]
# ### Exercise 4 · ★★☆ · ~3 min
# In this run, which layout reached the higher accuracy within the same budget of `layout_max_steps` steps?
# (`"sink-first"` or `"mem-first"`)

# %%
answer_4 = ...
exercises.check_better_layout(answer_4, accuracy_at_budget);

# %% [markdown]
# ### Exercise 5 · ★★★ · ~15 min
# Write greedy decoding yourself: from `[sink] [vector]` alone, take the most likely next token at the last
# position, append its embedding, and repeat, `n` times. `vectors` is `result.vectors` (k x d); the sink's
# embedding is `embed(torch.tensor([[lm.spec.sink_token_id]]))` as in section 2. The check runs the kit's
# `decode()` on the same vector and compares the token ids.

# %%
def my_decode(vectors, n):
    """The n token ids that greedy decoding gives from [sink] [vectors] alone."""
    ...   # your loop here
    return ...


answer_5 = my_decode(result.vectors, len(text.token_ids))
exercises.check_own_decode(answer_5, decode(lm, result.vectors, len(text.token_ids)).token_ids);

# %% [markdown]
# ## Solutions
#
# Try the exercises first. Each block below opens on a click and holds a reference answer that runs through
# the same check: copy it into a cell to run it. Run All never runs them, so your own answers stay; the
# kit's tests run every one of them after the notebook and check that it passes.

# %% [markdown]
# <details><summary>Solution to exercise 1</summary>
#
# ```python
# # Exercise 1: the loop by hand
# def my_cram(start, text_emb, sink_emb, targets, steps, lr):
#     """Return [[loss, accuracy], ...]: one pair per step, measured before the optimiser step."""
#     mem = torch.nn.Parameter(start.clone())
#     opt = torch.optim.AdamW([mem], lr=lr, betas=(0.9, 0.9), weight_decay=0.01)
#     n = targets.shape[1]
#     history = []
#     for _ in range(steps):
#         inputs = torch.cat([sink_emb, mem.to(text_emb.dtype), text_emb], dim=1)    # [sink] [mem] [t_1..t_n]
#         logits = lm.model(inputs_embeds=inputs).logits[:, 1:1 + n].float()        # mem predicts t_1, ...
#         loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
#         accuracy = (logits.argmax(-1) == targets).float().mean().item()
#         history.append([loss.item(), accuracy])
#         loss.backward()
#         opt.step()
#         opt.zero_grad()
#     return history
#
#
# my_history = my_cram(start, text_emb, sink_emb, targets, hand_steps, lr)
# exercises.check_own_loop(my_history, reference);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2
# answer_2 = (result.baseline_ce_nats - result.final_ce_nats) / math.log(2)
# exercises.check_info_gain_bits(answer_2, result);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 3</summary>
#
# ```python
# # Exercise 3: "yes" only if it reached 100 % (greedy-exact implies 100 % teacher-forced)
# answer_3 = "yes" if early.greedy_exact else "no"
# exercises.check_greedy_exact(answer_3, early);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 4</summary>
#
# ```python
# # Exercise 4: read it from this run's comparison
# answer_4 = max(accuracy_at_budget, key=accuracy_at_budget.get)
# exercises.check_better_layout(answer_4, accuracy_at_budget);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 5</summary>
#
# ```python
# # Exercise 5: greedy decoding by hand (no cache: the whole prefix is read again at every step)
# def my_decode(vectors, n):
#     """The n token ids that greedy decoding gives from [sink] [vectors] alone."""
#     dev = lm.spec.device
#     with torch.no_grad():
#         sink = embed(torch.tensor([[lm.spec.sink_token_id]], device=dev))
#         mem = torch.as_tensor(vectors, dtype=torch.float32).reshape(1, -1, lm.spec.d).to(dev, sink.dtype)
#         inputs, ids = torch.cat([sink, mem], dim=1), []
#         for _ in range(n):
#             next_id = int(lm.model(inputs_embeds=inputs).logits[0, -1].argmax())
#             ids.append(next_id)
#             inputs = torch.cat([inputs, embed(torch.tensor([[next_id]], device=dev))], dim=1)
#     return ids
#
#
# answer_5 = my_decode(result.vectors, len(text.token_ids))
# exercises.check_own_decode(answer_5, decode(lm, result.vectors, len(text.token_ids)).token_ids);
# ```
#
# </details>

# %% [markdown]
# ## What you should have seen
#
# Your figures from this run beside their range over the kit's recorded runs of this notebook in the same
# mode (fast or full), read from the files under docs/data that name their command, machine and date.

# %%
from cramlab.lab.recorded import what_you_should_have_seen

what_you_should_have_seen("03_first_cram", record.figures,
                          ["n_tokens", "converged", "steps", "greedy_exact", "info_gain_bits", "mem_first_accuracy",
                           "accuracy_at_equal_budget.sink-first"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [04 · How many tokens fit?](04_how_many_tokens_fit.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [02 · How surprising is text?](02_how_surprising_is_text.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [04 · How many tokens fit?](04_how_many_tokens_fit.ipynb) →
