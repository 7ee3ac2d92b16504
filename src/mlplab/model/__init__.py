"""The models, built from config: the MLP (:mod:`.mlp`), what each head means (:mod:`.heads`:
its loss and its expected value at initialization) and the linear models' own summary
(:mod:`.linear`).
"""
