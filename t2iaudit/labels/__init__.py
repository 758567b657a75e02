"""Label files made elsewhere (human annotation, another tool): reading, mapping raw values, importing.

``files`` reads CSV/TSV/JSONL with errors naming file, row and column; ``mapping`` turns raw values
into labels (canonical vocabularies, abstention words, ``--map``); ``importer`` validates a whole
file and hands the records to ``t2iaudit.run.imported``, which writes the run directory.
"""
