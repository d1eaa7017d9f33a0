"""What is measured and how it is reported: searches (grid, bisection, progressive), sweeps and their
results files, reproduce, the Max rule and Table 1, the papers' figures, surprisal, attention,
trajectories, the benchmark.

Owns: protocols over the engine and the numbers they give. Does not:
define the step (engine) or draw (lab).
"""
