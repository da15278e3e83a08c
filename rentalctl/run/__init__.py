"""The run contract: what a run is called and what it leaves behind, read by every layer.

``layout`` (where a run's files and step results live in the lake), ``ids`` (run ids and their
one rule) and ``manifest`` (the manifest and part files of a table's extract) import nothing of
rentalctl but its errors and each other, so the adapters may use them. ``records`` (the run
records in the state store) and ``lock`` (the one pipeline lock) work through the state store
and the lake, so they sit just above the Context, below the pipeline that writes them.
"""
