"""The AWS clients every deploy module uses, from one session: one factory for upload-scripts
and deploy-sfn alike. Each client is made on first use, so a plan that never touches a service
needs no permission for it."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from rentalctl import aws
from rentalctl.config import Settings


class Clients:
    def __init__(self, boto3_session: Any) -> None:
        self.session = boto3_session

    @classmethod
    def create(cls, settings: Settings, boto3_session: Any | None = None) -> Clients:
        return cls(boto3_session or aws.session(settings.aws.region))

    @cached_property
    def s3(self) -> Any:
        return aws.client("s3", self.session)

    @cached_property
    def glue(self) -> Any:
        return aws.client("glue", self.session)

    @cached_property
    def sfn(self) -> Any:
        return aws.client("stepfunctions", self.session)

    @cached_property
    def scheduler(self) -> Any:
        return aws.client("scheduler", self.session)
