"""The models, built from config: the MLP (:mod:`.mlp`), what each head's outputs mean
(:mod:`.heads`: probabilities, log-probabilities, the loss and its name, the export's output
names), what the model does to the images' geometry (:mod:`.views`: ink alignment, test-time
views, the one turn/zoom/shift grid), the model with its normalization built in that predict
and export run (:mod:`.raw_image`), and the linear models' own summary (:mod:`.linear`).
"""
