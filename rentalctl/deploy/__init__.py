"""Deployment to AWS, chalice-style: a module computes a plan (frozen dataclasses, no side
effect) from the settings and what is deployed, and executes it; ``--dry-run`` is the same code
without the execute step.

- ``rentalctl.deploy.glue``: ``upload-scripts``, the plan and its execution, of the files in
  ``glue_files`` (Glue entrypoint, job library, SQL and config in the lake's scripts prefix) and
  the jobs in ``glue_jobs`` (the Glue job definitions).
- ``rentalctl.deploy.sfn``: ``deploy-sfn``, the plan and its execution, of the state machine and
  its schedule as ``sfn_specs`` describes them.
- ``rentalctl.deploy.iam``: ``iam-policy`` (least-privilege policies of the pipeline's roles).
- ``rentalctl.deploy.clients``: the one factory of the AWS clients they use.
"""
