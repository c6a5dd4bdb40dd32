"""Evaluation for evaluators: question sets in, metrics, reports and comparisons out.

`python -m eval run | compare | calibrate`; see eval/__main__.py. Leaves out: the pipeline itself (qa/).
"""
