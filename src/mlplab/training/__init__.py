"""Training: the loop (:mod:`.loop`, one function that reads top to bottom), device batches
and augmentation (:mod:`.batches`), optimizers and schedules (:mod:`.optim`), the device
(:mod:`.device`), torchrun (:mod:`.distributed`), per-epoch metrics (:mod:`.metrics`) and
the learning-rate range test (:mod:`.lr_find`).
"""
