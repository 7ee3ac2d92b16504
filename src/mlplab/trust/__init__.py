"""Trust: when a classifier's answer may be believed.

- :mod:`.calibration`  temperature scaling fitted on the validation split, so that a
  probability of 0.9 is right about 9 times in 10; top-label ECE, NLL, Brier score and the
  reliability diagram's numbers
- :mod:`.rejection`    a score of how unlike the training images an input is, with a
  threshold chosen on the validation split: "not sure this is a digit"
- :mod:`.explain`      attribution maps (Captum: integrated gradients, occlusion,
  saliency) of the calibrated log-odds, against the run's background in pixel space
- :mod:`.deletion`     the deletion test: how fast the class's probability falls when the
  most-attributed pixels are set to the background, against random pixels

The package sits just above :mod:`mlplab.run` (docs/architecture.md): the training loop fits
both when it ends, and evaluate, the report, predict and the server apply them.
"""
