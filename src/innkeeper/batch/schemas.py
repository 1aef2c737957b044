"""Batch API wire shapes (spec cdp.md §10), Sitecore field names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

StatusCode = Literal["uploading", "file_uploaded", "processing", "success", "error", "corrupted"]


class AllocateRequest(BaseModel):
    """``PUT /v2/batches/{batchRef}`` body: hex MD5 of the .gz file and its size in bytes."""

    model_config = ConfigDict(extra="forbid")

    checksum: StrictStr
    size: StrictInt


class Location(BaseModel):
    """Where to upload the file, and until when."""

    href: str
    expiry: str


class BatchStatus(BaseModel):
    """The batch's state; counts once processing started, ``log`` for errors."""

    code: StatusCode
    log: str | None = None
    records_total: int | None = Field(default=None, alias="recordsTotal")
    records_succeeded: int | None = Field(default=None, alias="recordsSucceeded")
    records_failed: int | None = Field(default=None, alias="recordsFailed")

    model_config = ConfigDict(populate_by_name=True)


class BatchOut(BaseModel):
    """A batch (allocate, status and inspect responses)."""

    model_config = ConfigDict(populate_by_name=True)

    href: str
    ref: str
    checksum: str
    size: int
    location: Location
    status: BatchStatus
    created_at: str = Field(alias="createdAt")
    modified_at: str = Field(alias="modifiedAt")


class BatchListItem(BaseModel):
    """One batch in the inspect list."""

    model_config = ConfigDict(populate_by_name=True)

    href: str
    ref: str
    status: StatusCode
    log: str | None = None
    created_at: str = Field(alias="createdAt")
    modified_at: str = Field(alias="modifiedAt")


class BatchList(BaseModel):
    """``GET /v2/batches/inspect``: batches of the last 30 days."""

    model_config = ConfigDict(populate_by_name=True)

    total_count: int = Field(alias="totalCount")
    offset: int
    limit: int
    items: list[BatchListItem]
