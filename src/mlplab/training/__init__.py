"""Training: the loop (:mod:`.loop`, one function that reads top to bottom), the set-up and
the step it shares with the range test (:mod:`.session`), device batches (:mod:`.batches`)
and their augmentation (:mod:`.augment`), optimizers and schedules (:mod:`.optim`), CPU
threads (:mod:`.threads`), the device (:mod:`.device`), torchrun (:mod:`.distributed`),
per-epoch metrics (:mod:`.metrics`) and the learning-rate range test (:mod:`.lr_find`).
"""
