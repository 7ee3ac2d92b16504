"""Pages and files for people: a run's report (:mod:`.run_report`), a dataset's exploration
(:mod:`.explore`), several runs side by side (:mod:`.compare`), TensorBoard event files
(:mod:`.tensorboard`), all drawn with :mod:`.page`.
"""
