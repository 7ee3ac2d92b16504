"""A run's model on new inputs: image files to top-k classes (:mod:`.predict`), and the model
exported to a file that runs without mlplab (:mod:`.export`).
"""
