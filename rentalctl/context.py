"""One Context per command or job: the settings and the adapters they select, built in one place.

Pipeline steps receive a Context and never ask which target they run on (ARCHITECTURE.md: same
keys, swapped implementations). Adapters are opened on first use, and imported
then too: every command imports this module, ``--help`` included, and a command loads only the
adapters (and drivers) it uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.adapters.source import Source
    from rentalctl.adapters.state import StateStore
    from rentalctl.adapters.warehouse import Warehouse
    from rentalctl.config import Settings


@dataclass
class Context:
    settings: Settings
    boto3_session: Any | None = field(default=None, repr=False)

    def _session(self) -> Any:
        if self.boto3_session is None:
            from rentalctl import aws

            self.boto3_session = aws.session(self.settings.aws.region)
        return self.boto3_session

    def _needs_aws(self, url: object) -> bool:
        from rentalctl import urls

        return isinstance(url, (urls.S3URL, urls.DynamodbURL, urls.RedshiftURL))

    def source(self) -> Source:
        """A new source connection (the caller closes it)."""
        from rentalctl.adapters.factories import open_source

        return open_source(self.settings.source)

    @cached_property
    def lake(self) -> Lake:
        from rentalctl.adapters.factories import open_lake

        session = self._session() if self._needs_aws(self.settings.lake) else None
        return open_lake(self.settings.lake, boto3_session=session)

    @cached_property
    def state(self) -> StateStore:
        from rentalctl.adapters.factories import open_state

        session = self._session() if self._needs_aws(self.settings.state) else None
        return open_state(self.settings.state, boto3_session=session)

    def warehouse(self) -> Warehouse:
        """A new warehouse connection (the caller closes it)."""
        from rentalctl.adapters.factories import open_warehouse

        session = self._session() if self._needs_aws(self.settings.warehouse) else None
        return open_warehouse(self.settings, boto3_session=session)
