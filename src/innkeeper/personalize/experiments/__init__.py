"""Experiments: deterministic sticky traffic assignment and the statistics behind experiment results.

* :mod:`.assignment` — bucket, Unique/Universal assignment of guests to variants (personalize.md §7.1–7.2,
  published in ``docs/personalize/bucketing.md``);
* :mod:`.stats` — minimum sample size, z-test, Welch's t-test, GrowthBook-compatible Bayesian chance to
  win, sample-ratio-mismatch check and the WINNER/INCONCLUSIVE/LEADING verdict (§7.5–7.7, §10.2).

Pure Python (``hashlib``, ``math``, ``statistics``): no database, no scipy or numpy at runtime.
"""
