"""Batch API errors (spec cdp.md §10)."""

from innkeeper.core.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge


class BatchNotFound(NotFound):
    """No batch has this ref."""

    code = "batch_not_found"


class InvalidBatch(Invalid):
    """The allocation request or a query parameter is invalid."""

    code = "invalid_batch"


class BatchRefTaken(Conflict):
    """The batch ref is already used with another checksum or size, or is past ``uploading``."""

    code = "batch_ref_taken"


class UploadForbidden(Forbidden):
    """The upload or log URL is forged or expired."""

    code = "batch_url_forbidden"


class BatchFileTooLarge(PayloadTooLarge):
    """The uploaded body is larger than the batch size limit."""

    code = "batch_file_too_large"


class SizeMismatch(Invalid):
    """The uploaded body's length differs from the allocated size (the batch is corrupted)."""

    code = "batch_size_mismatch"


class ChecksumMismatch(Conflict):
    """The body's MD5 differs from the allocated checksum or from ``Content-Md5`` (corrupted)."""

    code = "batch_checksum_mismatch"
