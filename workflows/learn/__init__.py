"""Active learning: ``pansim learn CONFIG.yaml`` grows a data set where a committee disagrees.

One round is explore -> select -> label -> retrain (:mod:`workflows.learn.loop`):

- explore (:mod:`workflows.learn.explore`): MD with the committee at the configured
  temperatures and pressures, compressed and strained cells, close contacts and
  vacancies; every candidate gets the committee's force disagreement;
- select (:mod:`workflows.learn.select`): candidates above the threshold, diverse by
  farthest-point sampling on a cheap structural descriptor, capped per round;
- label: the existing labellers (:mod:`pansim.data.labelers`, GPAW / PySCF / EMT)
  through the resumable runner (:mod:`pansim.data.runner`), one manifest entry per
  configuration;
- retrain: each committee member, warm started from the previous round or from
  scratch; a diverging retrain keeps the previous models.

The configuration is described in :mod:`workflows.learn.config` and docs/active_learning.md.
"""
