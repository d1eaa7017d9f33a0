"""The notebook side: widgets, plots, exercises and their checks, the papermill runner.

Owns: drawing
and checking. Does not: compute results or define a rule (it calls engine and science).
"""
