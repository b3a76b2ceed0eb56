"""Research bookkeeping of the pansim project (not installed, not part of the library).

- :mod:`lab.plan`: the training plan of the shipped models (base configs x variants x seeds);
- :mod:`lab.ablation`: the ablation table (test errors and costs of each variant over seeds);
- :mod:`lab.cards`: model cards of trained runs, and shipping them into ``pansim/pretrained``;
- :mod:`lab.timing`: interleaved timing (medians) for benchmarks and the ablation table;
- :mod:`lab.splice`: generated tables between markers in Markdown pages.

Run from the repository root (``python -m ...`` or ``scripts/``), where ``lab`` is importable.
The installed packages ``pansim`` and ``workflows`` never import it.
"""
