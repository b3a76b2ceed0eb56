"""Training and evaluation: config, data, loss, trainer (DDP), checkpoints, eval reports.

Entry points: ``pansim train`` (:mod:`pansim.training.cli_train`, library call
:func:`pansim.training.trainer.train`) and ``pansim eval``
(:mod:`pansim.training.cli_eval`, :mod:`pansim.training.report`). Nothing is
imported here, so ``import pansim.training`` stays cheap.
"""
