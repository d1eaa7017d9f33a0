"""Exercises of the notebooks: each `check_*` prints ✔ or ✘ with a hint and returns True or False.

The reference answer is computed here from the package (capacity math, the learner's own results), never
typed in, so a check stays right when the parameters change. An answer left as `...` (Ellipsis) or None
counts as "not answered yet".

Owns: the checks and their hints. Does not own: any rule they check against — the capacity math comes
from cramlab.capacity, the paper's Max rule and C from cramlab.science.report (`max_tokens_that_fit`, re-exported
here), the least-squares line from cramlab.lab.plots; the ★★★ checks compare the learner's own code with the
kit's function run on the learner's run (decode, grid_search, fit_line).
"""
from __future__ import annotations

import itertools
import math

from cramlab import capacity as cap
from cramlab.science.report import PAPER_THRESHOLD, max_tokens_that_fit

OK, NO = "✔", "✘"


def _report(ok: bool, good: str, bad: str) -> bool:
    print(f"{OK} {good}" if ok else f"{NO} {bad}")
    return ok


def _unanswered(answer) -> bool:
    if answer is ... or answer is None:
        print(f"{NO} not answered yet: replace ... with your answer and run the cell again")
        return True
    return False


def _number(answer):
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _close(answer, reference: float, rel: float = 0.01, abs_tol: float = 0.0) -> bool:
    value = _number(answer)
    return value is not None and math.isclose(value, reference, rel_tol=rel, abs_tol=abs_tol)


def _check_number(answer, reference: float, what: str, hint: str, rel: float = 0.01, abs_tol: float = 0.0) -> bool:
    if _unanswered(answer):
        return False
    if _number(answer) is None:
        return _report(False, "", f"{what}: expected a number, got {answer!r}")
    return _report(_close(answer, reference, rel, abs_tol), f"{what}: {float(answer):g} is right",
                   f"{what}: {float(answer):g} is not it. Hint: {hint}")


def _check_choice(answer, reference: str, options: tuple[str, ...], what: str, why: str) -> bool:
    if _unanswered(answer):
        return False
    given = str(answer).strip().lower()
    if given not in options:
        return _report(False, "", f"{what}: answer one of {', '.join(repr(o) for o in options)}, got {answer!r}")
    return _report(given == reference, f"{what}: {reference!r} is right. {why}", f"{what}: not {given!r}. {why}")


# --- 00 welcome -----------------------------------------------------------------------------------------

def check_vector_size(answer, spec) -> bool:
    """How many numbers one input vector of the loaded model holds (its d)."""
    return _check_number(answer, spec.d, "values in one vector",
                         "it is the width of the input embedding matrix, lm.spec.d", rel=0, abs_tol=0)


# --- 01 bits in a vector ---------------------------------------------------------------------------------

def check_bits_per_value(dtype: str, answer) -> bool:
    """Bits stored by one value of the given dtype."""
    return _check_number(answer, cap.bits_per_value(dtype), f"bits in one {dtype} value",
                         "count the bits of the format: float32 has 32, bfloat16 and float16 16", rel=0)


def check_capacity_tokens(model: str, answer, n_mem: int = 1, bits: int = cap.PAPER_BITS_PER_VALUE) -> bool:
    """Theoretical capacity in tokens, d * bits * n_mem / log2|V| (within one token)."""
    c = cap.capacity_of(model, bits=bits, n_mem=n_mem)
    return _check_number(answer, c.capacity_tokens_exact, f"capacity of {n_mem} vector(s) of {model}",
                         f"d={c.d}, |V|={c.vocab_size}: d * {bits} * {n_mem} / log2(|V|)", rel=0, abs_tol=1.0)


def check_bits_per_token(vocab_size: int, answer) -> bool:
    """Bits needed to name one token of a uniform vocabulary: log2 |V| (within 0.01)."""
    return _check_number(answer, cap.bits_per_token(vocab_size), f"bits to name one of {vocab_size} tokens",
                         "math.log2(vocab_size)", rel=0, abs_tol=0.01)


# --- 02 how surprising is text -------------------------------------------------------------------------

def check_total_bits(answer, surprisal) -> bool:
    """The total cross-entropy of a text in bits, from its per-token surprisal in nats."""
    return _check_number(answer, surprisal.total_bits, "total cross-entropy in bits",
                         "sum the per-token nats, then divide by math.log(2)", rel=0.005)


def check_cheapest_source(answer, per_token_bits_by_source: dict) -> bool:
    """Which source has the lowest mean surprisal per token (the cheapest to cram)."""
    reference = min(per_token_bits_by_source, key=per_token_bits_by_source.get)
    return _check_choice(answer, reference, tuple(per_token_bits_by_source), "cheapest text to cram",
                         "Fewer bits per token leave more of the vector for more tokens.")


# --- 03 first cram ----------------------------------------------------------------------------------------

def check_info_gain_bits(answer, result) -> bool:
    """Information gain of a crammed text, in bits: (CE without the vector - CE with it) / ln 2."""
    reference = cap.info_gain_bits(result.baseline_ce_nats, result.final_ce_nats)
    return _check_number(answer, reference, "information gain in bits",
                         "(result.baseline_ce_nats - result.final_ce_nats) / math.log(2)", rel=0.005, abs_tol=0.05)


def check_own_loop(history, reference, rel: float = 0.02) -> bool:
    """A hand-written cramming loop against `cram()` from the same start: `history` holds one
    [loss, accuracy] pair per step (before the optimiser step); `reference` is the CramResult of `cram()`
    run for as many steps (its history: [step, loss, accuracy]). Losses must agree within `rel`, accuracies
    within one token, over every step both ran."""
    if history is ... or history is None or (hasattr(history, "__len__") and len(history) == 0):
        print(f"{NO} not answered yet: complete my_cram so that it returns one [loss, accuracy] per step")
        return False
    try:
        mine = [(float(h[0]), float(h[1])) for h in history]
    except (TypeError, ValueError, IndexError):
        return _report(False, "", f"your loop: expected a list of [loss, accuracy] pairs, got {history!r:.80}")
    # cram() records [step, loss, accuracy] at its checks; the entry at step k is the k-th forward's
    ref = {int(h[0]): (float(h[1]), float(h[2])) for h in reference.history if 1 <= int(h[0]) <= len(mine)}
    ran = getattr(reference, "steps", len(reference.history))
    if len(mine) != ran:
        print(f"note: your loop ran {len(mine)} steps, cram() {ran}; comparing the steps both ran")
    one_token = 1.0 / reference.n_scored + 1e-6
    n = len(ref)
    for step, (ref_loss, ref_acc) in sorted(ref.items()):
        loss, acc = mine[step - 1]
        if not math.isclose(loss, ref_loss, rel_tol=rel) or abs(acc - ref_acc) > one_token:
            return _report(False, "", f"your loop departs from cram() at step {step}: loss {loss:.4f} vs "
                                      f"{ref_loss:.4f}, accuracy {acc:.3f} vs {ref_acc:.3f}. Hint: same start "
                                      "(start.clone()), AdamW betas (0.9, 0.9) and weight decay 0.01, logits at "
                                      "positions 1..n, loss recorded before opt.step()")
    last = max(ref, default=0)
    return _report(n > 0, f"your loop follows cram() for {n} steps (loss {mine[0][0]:.3f} -> "
                          f"{mine[last - 1][0]:.3f}, accuracy {mine[0][1]:.3f} -> {mine[last - 1][1]:.3f})",
                   "no step to compare")


def check_own_decode(token_ids, reference_ids) -> bool:
    """Greedy decoding written by hand against the kit's `decode()` on the same vector: the same token ids."""
    if _unanswered(token_ids):
        return False
    try:
        mine = [int(t) for t in token_ids]
    except (TypeError, ValueError):
        return _report(False, "", f"your decoding: expected a list of token ids, got {token_ids!r:.80}")
    ref = [int(t) for t in reference_ids]
    if mine == ref:
        return _report(True, f"your greedy decoding gives decode()'s {len(ref)} tokens exactly", "")
    first = next((i for i, (a, b) in enumerate(zip(mine, ref)) if a != b), min(len(mine), len(ref)))
    return _report(False, "", f"your decoding leaves decode()'s at position {first} (yours: {len(mine)} tokens, "
                              f"decode(): {len(ref)}). Hint: start from [sink] [vector], take the argmax of the "
                              "last position, append that token's embedding, repeat n times")


def check_greedy_exact(answer, result) -> bool:
    """Does greedy decoding from this run's vector reproduce the text exactly? (from the result itself)"""
    if result.greedy_exact is None:
        print(f"{NO} this result was not decoded (cram(..., decode=False)): nothing to compare")
        return False
    reference = "yes" if result.greedy_exact else "no"
    return _check_choice(answer, reference, ("yes", "no"), "greedy decoding reproduces the text",
                         f"Teacher-forced accuracy {result.teacher_forced_accuracy:.3f}, first wrong greedy "
                         f"token at position {result.first_mismatch}. Greedy-exact implies 100 % teacher-forced "
                         "accuracy, so below 100 % greedy decoding is never exact.")


def check_better_layout(answer, accuracy_by_layout: dict) -> bool:
    """Which layout reached the higher teacher-forced accuracy in the learner's own runs, at the same step
    budget (`accuracy_by_layout`: {"sink-first": acc, "mem-first": acc}). A tie accepts either."""
    best = max(accuracy_by_layout.values())
    winners = [k for k, v in accuracy_by_layout.items() if v == best]
    shown = ", ".join(f"{k} {v:.3f}" for k, v in accuracy_by_layout.items())
    if len(winners) > 1:
        if _unanswered(answer):
            return False
        given = str(answer).strip().lower()
        return _report(given in winners, f"both layouts reached {best:.3f} in this run ({shown}): {given!r} is "
                                         "right; a longer text or a smaller budget separates them",
                       f"answer one of {', '.join(repr(w) for w in winners)}")
    return _check_choice(answer, winners[0], tuple(accuracy_by_layout), "layout with the higher accuracy",
                         f"This run, same budget: {shown}.")


# --- 04 how many tokens fit -------------------------------------------------------------------------------

def check_max_tokens(answer, rows, threshold: float = PAPER_THRESHOLD) -> bool:
    """The paper's Max from your own length sweep (None when no length fits)."""
    reference = max_tokens_that_fit(rows, threshold)
    if answer is ...:          # None is a real answer here: "no length fits"
        _unanswered(answer)
        return False
    if reference is None:
        return _report(answer is None, "Max: no length fits, so None is right",
                       f"Max: no length reached mean accuracy {threshold}; the answer is None")
    return _check_number(answer, reference, "Max (largest length that fits)",
                         f"the largest n_tokens whose mean accuracy is >= {threshold}", rel=0)


def check_own_grid(rows, grid) -> bool:
    """A hand-written grid loop and Max rule against `grid_search` on the same texts and settings: `rows`
    holds one {"n_tokens", "mean_accuracy"} per length, and Max comes from them by the paper's rule."""
    if _unanswered(rows):
        return False
    try:
        mine = {int(r["n_tokens"]): float(r["mean_accuracy"]) for r in rows}
    except (TypeError, ValueError, KeyError):
        return _report(False, "", f"your grid: expected dicts with n_tokens and mean_accuracy, got {rows!r:.80}")
    ref = {r.n_tokens: r.mean_accuracy for r in grid.records}
    if sorted(mine) != sorted(ref):
        return _report(False, "", f"your grid ran lengths {sorted(mine)}, grid_search {sorted(ref)}")
    # one text's one token of difference (the CPU's float sums can tip an argmax) is tolerated
    one_token = 1.0 / (grid.records[0].n_texts * min(ref)) + 1e-6
    off = [n for n in ref if abs(mine[n] - ref[n]) > one_token]
    if off:
        return _report(False, "", f"your mean accuracy at N={off[0]} is {mine[off[0]]:.3f}, grid_search's "
                                  f"{ref[off[0]]:.3f}. Hint: cram every text's first N tokens from scratch, "
                                  "with the same max_steps, lr and seed")
    my_max = max_tokens_that_fit([{"n_tokens": n, "mean_accuracy": a} for n, a in mine.items()], grid.threshold)
    return _report(my_max == grid.max_tokens, f"your grid agrees with grid_search at every length; Max = "
                                              f"{my_max}", f"your rows give Max = {my_max}, grid_search "
                                              f"{grid.max_tokens}")


def check_own_fit(slope, gain_nats, points) -> bool:
    """A least-squares slope and the constant gain C fitted by hand over the texts that did not fit, against
    the kit's `plots.fit_line` and `plots.constant_gain_nats` on the same points."""
    # plotly (cramlab.lab.plots) is imported only by the exercises that need it
    from cramlab.lab.plots import fit_line
    from cramlab.science.report import constant_gain_nats
    if _unanswered(slope) or _unanswered(gain_nats):
        return False
    not_fit = [p for p in points if not p["converged"]]
    if not not_fit:
        return _report(False, "", "every text fit in this run: there is no line to fit (use longer lengths)")
    ref_slope, _ = fit_line([p["baseline_ce_nats"] for p in not_fit], [p["final_ce_nats"] for p in not_fit])
    ref_gain = constant_gain_nats(not_fit)
    slope_ok = (_number(slope) is None and math.isnan(ref_slope)) or _close(slope, ref_slope, 1e-3, 1e-6)
    return _report(slope_ok and _close(gain_nats, ref_gain, 1e-3, 1e-6),
                   f"slope {ref_slope:.3f} and C = {ref_gain:.1f} nats over the {len(not_fit)} texts that did "
                   "not fit",
                   f"yours: slope {slope!r:.10}, C {gain_nats!r:.10}; the kit's: {ref_slope:.3f}, {ref_gain:.1f}. "
                   "Hint: only the texts with converged False; slope = cov(x, y) / var(x) with x = CE without, "
                   "y = CE with; C = mean of (CE without - CE with)")


def check_own_accuracies(accuracy_by_k: dict, results_by_k: dict) -> bool:
    """Teacher-forced accuracy computed by hand from each k's vectors (first text) against what `cram()`
    reported for them (`results_by_k`: {k: [CramResult, ...]}); within one token."""
    if _unanswered(accuracy_by_k):
        return False
    if not isinstance(accuracy_by_k, dict) or sorted(accuracy_by_k) != sorted(results_by_k):
        return _report(False, "", f"expected one accuracy per k in {sorted(results_by_k)}, got {accuracy_by_k!r:.80}")
    for k, results in results_by_k.items():
        ref, one_token = results[0].teacher_forced_accuracy, 1.0 / results[0].n_scored + 1e-6
        if not _close(accuracy_by_k[k], ref, 0, one_token):
            return _report(False, "", f"k={k}: yours {accuracy_by_k[k]!r:.8}, cram() {ref:.3f}. Hint: [sink] then "
                                      "the k vectors then the text; the last vector's position predicts t_1")
    shown = ", ".join(f"k={k}: {accuracy_by_k[k]:.3f}" for k in results_by_k)
    return _report(True, f"your accuracies match cram()'s for every k ({shown})", "")


def check_utilisation(model: str, answer) -> bool:
    """Capacity utilisation of a Table 1 model: mean gain tokens / L_max (within 2 % of it)."""
    from cramlab.science.paper import TABLE1
    row = TABLE1[model]
    reference = cap.capacity_utilisation(row["gain_tokens"], cap.capacity_of(model).capacity_tokens_exact)
    return _check_number(answer, reference, f"capacity utilisation of {model}",
                         f"gain tokens {row['gain_tokens']} divided by L_max", rel=0.02)


# --- 05 capacity is entropy --------------------------------------------------------------------------------

def check_remaining_ce(baseline_ce_nats: float, gain_nats: float, answer) -> bool:
    """On the slope-1 line, a text keeps CE_mem = CE_orig - C nats (never below zero)."""
    reference = max(0.0, baseline_ce_nats - gain_nats)
    return _check_number(answer, reference, "cross-entropy left with the vector",
                         "subtract the gain C from the text's own cross-entropy (CE cannot go below 0)",
                         rel=0.005, abs_tol=0.05)


def check_longest_text(gain_nats: float, per_token_nats: float, answer) -> bool:
    """Tokens a vector removing C nats can hold of a text costing h nats per token: C / h (within 2 %)."""
    reference = gain_nats / per_token_nats
    return _check_number(answer, reference, "longest text that fits", "divide the gain C by the nats per token",
                         rel=0.02)


# --- 06 more vectors ---------------------------------------------------------------------------------------

def check_compression_ratio(n_tokens: int, n_mem: int, answer) -> bool:
    """Tokens per vector."""
    return _check_number(answer, cap.compression_ratio(n_tokens, n_mem), f"tokens per vector ({n_tokens}/{n_mem})",
                         "n_tokens / n_mem", rel=0.001)


def scaling_is_roughly_linear(series: dict, within: float = 2.0) -> bool:
    """Max(k) / (k * Max(1)) stays within a factor `within` of 1 for every k of a {k: Max} series."""
    one = series[min(series)] / min(series)
    return all(1 / within <= (v / k) / one <= within for k, v in series.items())


def check_scaling(answer, series_by_model: dict | None = None) -> bool:
    """Does Max grow about linearly with the number of vectors? Derived from the paper's multi-vector
    figures (`cramlab.science.paper.MULTI_VECTOR_MAX_TOKENS`, or the series given)."""
    if series_by_model is None:
        from cramlab.science.paper import MULTI_VECTOR_MAX_TOKENS as series_by_model
    linear = all(scaling_is_roughly_linear(s) for s in series_by_model.values())
    lines = []
    for name, s in series_by_model.items():
        ks = sorted(s)
        doubling = [f"{a}->{b}" for a, b in itertools.pairwise(ks) if b == 2 * a and s[b] == 2 * s[a]]
        lines.append(f"{name}: " + ", ".join(f"{k}: {s[k]}" for k in ks)
                     + (f" (exact doubling at {', '.join(doubling)})" if doubling else " (never exactly doubling)"))
    return _check_choice(answer, "yes" if linear else "no", ("yes", "no"), "roughly linear scaling with n_mem",
                         "Max per vector stays within a factor 2 of one vector's: " + "; ".join(lines) + ".")


def _get(row, key):
    return row[key] if isinstance(row, dict) else getattr(row, key)


# --- 07 at scale / 08 beyond (search and sweeps) -------------------------------------------------------------

def check_utilisation_of_row(answer, row) -> bool:
    """Capacity utilisation of one of our Table 1 rows: its mean gain tokens / its L_max (within 1 %)."""
    gain, l_max = _get(row, "gain_tokens"), _get(row, "capacity_tokens")
    if gain is None or not math.isfinite(gain):
        print(f"{NO} this row has no text that failed to fit, so it has no gain to average: pick another row")
        return False
    return _check_number(answer, gain / l_max, "capacity utilisation", "gain_tokens divided by capacity_tokens",
                         rel=0.01)


def check_n_jobs(answer, config) -> bool:
    """Lines a finished sweep holds: one per model x source x layout x protocol x n_mem x length x text."""
    from cramlab.science.sweep import n_jobs
    return _check_number(answer, n_jobs(config), "lines in the results file",
                         "multiply the number of models, sources, layouts, protocols, n_mem values, lengths "
                         "and texts", rel=0)


def check_progressive_mean(answer, summary) -> bool:
    """Mean longest length reached by progressive cramming over the texts (within 1 %)."""
    return _check_number(answer, summary.mean_tokens, "mean tokens reached progressively",
                         "average t.longest_tokens over summary.texts", rel=0.01)


def check_prefix_fits(answer, lm, vectors, token_ids, n_fit: int, layout: str = "sink-first") -> bool:
    """Vectors that fit the first `n_fit` tokens of `token_ids`: do they also give back the first M < n_fit
    tokens, with no more training? Decided by decoding M = n_fit // 2 tokens greedily from the vectors."""
    if n_fit < 2:
        print(f"cannot check: these vectors fit {n_fit} token(s), so there is no shorter prefix to test; "
              "grow a longer one first (more steps or a higher lr)")
        return False
    from cramlab.engine.decode import decode
    m = n_fit // 2
    got = decode(lm, vectors, m, layout=layout).token_ids
    reference = "yes" if list(got) == list(token_ids[:m]) else "no"
    gave = "the" if reference == "yes" else "not the"
    return _check_choice(answer, reference, ("yes", "no"), f"do vectors that fit {n_fit} tokens give back the "
                         f"first {m}", f"Decoding {m} tokens from them gave {gave}"
                         " prefix: the model is causal, so the greedy steps for the first M tokens never see the "
                         "later ones.")


def check_own_progressive(answer, reference) -> bool:
    """`(longest, total_steps)` of a hand-written progressive loop (each length warm-started from the last
    one's vectors and AdamW state) against `progressive(..., carry_optimizer=True)` on the same text.
    `reference`: its ProgressiveResult, or a function returning it (run only once there is an answer)."""
    if _unanswered(answer):
        return False
    try:
        longest, steps = int(answer[0]), int(answer[1])
    except (TypeError, ValueError, IndexError):
        return _report(False, "", f"expected (longest, total_steps), got {answer!r:.80}")
    ref = reference() if callable(reference) else reference
    same_steps = math.isclose(steps, ref.total_steps, rel_tol=0.05)    # float sums may shift a stop by a step
    return _report(longest == ref.longest_tokens and same_steps,
                   f"your loop grows the text to {longest} tokens in {steps} steps, as progressive() does "
                   f"({ref.longest_tokens} tokens, {ref.total_steps} steps)",
                   f"yours: {longest} tokens in {steps} steps; progressive(): {ref.longest_tokens} in "
                   f"{ref.total_steps}. Hint: stop at the first length that does not converge; pass the last "
                   "result's .vectors as init_vectors and its .optimizer as init_optimizer")


def check_components(answer, pca, share: float = 0.99) -> bool:
    """Fewest principal components of a trajectory that hold `share` of its variance."""
    return _check_number(answer, pca.n_components(share), f"components for {share:.0%} of the variance",
                         f"the first index where pca.cumulative reaches {share}, plus one", rel=0)
