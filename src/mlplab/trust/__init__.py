"""Trust: when a classifier's answer may be believed.

- :mod:`.calibration`  temperature scaling fitted on the validation split, so that a
  probability of 0.9 is right about 9 times in 10; top-label ECE, NLL, Brier score and the
  reliability diagram's numbers
- :mod:`.rejection`    a score of how unlike the training images an input is, with a
  threshold chosen on the validation split: "not sure this is a digit"

The package sits just above :mod:`mlplab.run` (docs/architecture.md): the training loop fits
both when it ends, and evaluate, the report, predict and the server apply them.
"""
