# ---
# jupyter:
#   cramlab:
#     smoke_parameters:
#       model: tiny-llama
#       n_texts: 1
#       n_tokens: 8
#   kernelspec:
#     display_name: Python 3 (cramlab)
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # 02 · How surprising is text?
#
# | Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (measured) | Prerequisites |
# |---|---|---|---|
# | 1 of 3 | full: 9 s (alone, 2026-12-06, `docs/data/notebooks_full_cpu_00-02_2026-12-06.json`) / fast: 20 s (two notebooks at a time, one thread each, 2026-11-29) | not measured yet | 00, 01 |
#
# **After this notebook you will be able to:**
# - measure a text's [cross-entropy](00_welcome.ipynb#cross-entropy) under the model, in
# [nats and bits](00_welcome.ipynb#nats-bits)
# - plot the surprisal of every token
# - compare a famous text, unseen text and random words
# - explain why predictable text should be cheaper to cram

# %%
import math

from cramlab import get_texts, load_model, token_surprisal
from cramlab.capacity import capacity_bits
from cramlab.lab import exercises, plots
from cramlab.lab.notebook_runner import Recorder
from cramlab.models.texts import first_tokens

# %% [markdown]
# *The cell below is tagged `parameters`: change the values there for a bigger or smaller experiment.
# `fast = True` swaps in the small budget of the cell after it, the one `cramlab notebooks run --fast` runs
# (papermill only sets `fast = True`).*

# %% tags=["parameters"]
model = "smollm2-135m"
n_tokens = 32      # tokens per text (at most ~100: the famous text below is that long)
n_texts = 3        # unseen and random texts to compare
seed = 0
fast = False             # True: the seconds-to-minutes budget of the cell below (what `--fast` runs)
record_path = ""

# %% tags=["fast"]
# The fast budget (`fast = True` above, or `cramlab notebooks run --fast`): its one definition.
if fast:
    n_tokens, n_texts = 24, 2

# %%
record = Recorder(record_path)
lm = load_model(model)
print(f"{lm.spec.name}: |V| = {lm.spec.vocab_size}, a uniform guess costs "
      f"{math.log2(lm.spec.vocab_size):.1f} bits per token")

# %% [markdown]
# ## 1. Surprisal, token by token
#
# The model gives every token a probability given the tokens before it. Its **surprisal** is
# $-\log_2 p(t_i \mid t_{<i})$ bits (or $-\ln p$ nats). Summed over the text, it is the text's
# **cross-entropy** CE: the number of bits an ideal code built on this model needs for the text.

# %%
text = get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=1, seed=seed)[0]
s = token_surprisal(lm, [text])[0]
print(f"text {text.text_id!r}: {text.text!r}\n")
print(f"cross-entropy {s.total_nats:.1f} nats = {s.total_bits:.1f} bits over {s.n_tokens} tokens "
      f"({s.per_token_bits:.2f} bits per token); the model's top guess was right for "
      f"{s.top1_accuracy:.0%} of the tokens")
record("n_tokens", s.n_tokens)
record("text_id", text.text_id)
record("unseen_total_bits", s.total_bits)
record("unseen_top1_accuracy", s.top1_accuracy)

# %%
print(plots.text_table([dict(i=i, token=repr(t), bits=b, guessed=p == tid)
                        for i, (t, b, p, tid) in enumerate(zip(s.tokens, s.surprisal_bits,
                                                                s.predicted_ids, s.token_ids))][:12],
                       ["i", "token", "bits", "guessed"], formats={"bits": ".2f"}))

# %%
plots.surprisal_chart(s.tokens, s.surprisal_bits, title=text.text_id,
                      predicted=[p == t for p, t in zip(s.predicted_ids, s.token_ids)])

# %% [markdown]
# Green bars: tokens the model would have guessed. Most of the cost sits in a few surprising tokens
# (names, the start of a new idea).
#
# ## 2. Famous, unseen and random text
#
# - **natural**: the opening of *A Tale of Two Cities*; the model has read it many times.
# - **unseen**: passages written for this kit, after the model was trained.
# - **random**: the paper's random text: English words drawn uniformly from the 100,000 most frequent ones
#   (`wordfreq`; the paper's code draws from GloVe's 100k vocabulary), joined by spaces.

# %%
DICKENS = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the other way.'
texts_by_source = {
    "natural": [first_tokens(lm.tokenizer, DICKENS, n_tokens, source="natural", text_id="dickens")],
    "unseen": get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=seed),
    "random": get_texts(lm.tokenizer, "random", n_tokens, n_texts=n_texts, seed=seed),
}
scores = {src: token_surprisal(lm, texts) for src, texts in texts_by_source.items()}
bits_by_source = {src: [x.per_token_bits for x in xs] for src, xs in scores.items()}
mean_bits = {src: sum(v) / len(v) for src, v in bits_by_source.items()}
print(plots.text_table([dict(source=src, texts=len(xs), bits_per_token=mean_bits[src],
                             total_bits=sum(x.total_bits for x in xs) / len(xs),
                             top1=sum(x.top1_accuracy for x in xs) / len(xs))
                        for src, xs in scores.items()],
                       ["source", "texts", "bits_per_token", "total_bits", "top1"],
                       formats={"bits_per_token": ".2f", "total_bits": ".1f", "top1": ".2f"},
                       headers={"total_bits": f"bits per {n_tokens} tokens", "top1": "top-1 right"}))
for src, value in mean_bits.items():
    record(f"{src}_bits_per_token", value)
record("random_costs_more_than_unseen", mean_bits["random"] > mean_bits["unseen"])
uniform_bits = math.log2(lm.spec.vocab_size)
for src, value in mean_bits.items():
    side = "above" if value > uniform_bits else "below"
    print(f"{src:<8} {value:5.2f} bits per token: {side} a uniform guess's log2 |V| = {uniform_bits:.2f}")

# %%
plots.source_comparison_chart(bits_by_source)

# %% [markdown]
# ## 3. Why predictable text should be cheaper to cram
#
# A trained vector does not have to carry what the model already predicts: it only has to supply the
# *surprise*. If it could deliver every one of its raw bits, the longest text it could hold would be
# capacity bits / bits per token. That is an upper bound (notebook 05 measures what a vector really
# removes), but the ranking already shows: the cheaper the text, the more tokens fit.

# %%
raw_bits = capacity_bits(lm.spec.d, 16)
for src, b in mean_bits.items():
    print(f"{src:<8} {b:5.2f} bits/token -> at most {raw_bits / b:7.0f} tokens in {raw_bits:,} bits")

# %% [markdown]
# ## Recap
# - Surprisal = -log p of each token; summed, the cross-entropy of the text (nats or bits, 1 bit = ln 2 nats).
# - A famous text costs little, unseen text more, random words the most.
# - The vector supplies the surprise the model cannot: predictable text should fit longer.
#
# ## Exercises
#
# ### Exercise 1 · ★☆☆ · ~3 min
# `s.surprisal_nats` holds the surprisal of each token of the first text, in nats. What is its total
# cross-entropy in **bits**? (compute it, do not copy it)

# %%
answer_1 = ...
exercises.check_total_bits(answer_1, s);

# %% [markdown]
# ### Exercise 2 · ★☆☆ · ~2 min
# Which source is cheapest to cram, by bits per token? Answer `"natural"`, `"unseen"` or `"random"`.

# %%
answer_2 = ...
exercises.check_cheapest_source(answer_2, mean_bits);

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
# # Exercise 1: sum the nats, divide by ln 2
# answer_1 = sum(s.surprisal_nats) / math.log(2)
# exercises.check_total_bits(answer_1, s);
# ```
#
# </details>

# %% [markdown]
# <details><summary>Solution to exercise 2</summary>
#
# ```python
# # Exercise 2: the source with the smallest mean bits per token in this run's table
# answer_2 = min(mean_bits, key=mean_bits.get)
# exercises.check_cheapest_source(answer_2, mean_bits);
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

what_you_should_have_seen("02_how_surprising_is_text", record.figures,
                          ["natural_bits_per_token", "unseen_bits_per_token", "random_bits_per_token",
                           "random_costs_more_than_unseen", "unseen_top1_accuracy"], fast=fast);

# %% [markdown]
# ## Next
#
# **Next: [03 · First cram](03_first_cram.ipynb)** · back to the roadmap: [00 · Welcome](00_welcome.ipynb)
#
# Paper: Kuratov et al., *Cramming 1568 Tokens into a Single Vector and Back Again* (ACL 2025,
# [arXiv 2502.13063](https://arxiv.org/abs/2502.13063)); the authors' code:
# [yurakuratov/hidden_capacity](https://github.com/yurakuratov/hidden_capacity); the follow-up's code:
# [FusionBrainLab/progressive_cramming](https://github.com/FusionBrainLab/progressive_cramming).
#
# **Navigation:** ← [01 · Bits in a vector](01_bits_in_a_vector.ipynb) · [00 · Welcome](00_welcome.ipynb) (roadmap) · [03 · First cram](03_first_cram.ipynb) →
