"""The run directory, the unit everything after training works from (:mod:`.directory`),
the data splits a run was trained and scored on (:mod:`.splits`), its summary
(:mod:`.summary`, ``summary.json``), and the runs table (:mod:`.table`).
"""
