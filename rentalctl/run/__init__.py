"""The run contract: what a run is called and what it leaves behind, read by every layer.

``layout`` (where a run's files and step results live in the lake), ``ids`` (run ids and their
one rule) and ``manifest`` (the manifest and part files of a table's extract) import nothing of
rentalctl but its errors and each other, so the adapters may use them. The run records and the
pipeline lock work through the state store, so they live above the adapters and the Context
(``rentalctl.run_records``, ``rentalctl.run_lock``), below the pipeline that writes them.
"""
