"""The tables component's exception tree, each mapped to a DynamoDB error type.

``TablesError`` is the base; ``aws_type`` is the name sent as
``{"__type": "com.amazonaws.dynamodb.v20120810#<aws_type>", "message": ...}`` (HTTP 400,
which botocore turns into ``client.exceptions.<aws_type>``):

- ``ValidationError`` → ``ValidationException``: a request DynamoDB would refuse (bad key,
  bad expression, number out of range, item over 400 KB...).
- ``TableNotFound`` → ``ResourceNotFoundException``: no table (or index) of that name.
- ``TableInUse`` → ``ResourceInUseException``: CreateTable of an existing name.
- ``ConditionFailed`` → ``ConditionalCheckFailedException``; carries the old item when the
  caller asked for it (``ReturnValuesOnConditionCheckFailure: ALL_OLD``).
- ``TransactionCanceled`` → ``TransactionCanceledException`` with ``CancellationReasons``.
- ``SerializationError`` → ``SerializationException``: a body that is not a JSON object.
- ``UnknownOperation`` → ``UnknownOperationException``: an ``X-Amz-Target`` we do not serve.
- ``LimitExceeded`` → ``LimitExceededException``: more indexes than DynamoDB allows.
- ``StoreUnavailable`` → ``InternalServerError`` (HTTP 500, which AWS SDKs retry): the
  PostgreSQL store cannot be reached or keeps conflicting. It is also a
  :class:`stackyard.serving.ServerError`, so ``stackyard up`` reports it without a traceback.
"""

from __future__ import annotations

from typing import Any

from ...serving import ServerError


class TablesError(Exception):
    """Base class of the tables component's errors."""

    aws_type = "InternalServerError"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "__type": f"com.amazonaws.dynamodb.v20120810#{self.aws_type}",
            "message": self.message,
        }


class ValidationError(TablesError, ValueError):
    aws_type = "ValidationException"


class TableNotFound(TablesError, LookupError):
    aws_type = "ResourceNotFoundException"


class TableInUse(TablesError):
    aws_type = "ResourceInUseException"


class LimitExceeded(TablesError):
    aws_type = "LimitExceededException"


class SerializationError(TablesError):
    aws_type = "SerializationException"


class UnknownOperation(TablesError):
    aws_type = "UnknownOperationException"


class ConditionFailed(TablesError):
    aws_type = "ConditionalCheckFailedException"

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("The conditional request failed")
        self.item = item

    def body(self) -> dict[str, Any]:
        body = super().body()
        if self.item is not None:
            body["Item"] = self.item
        return body


class TransactionCanceled(TablesError):
    aws_type = "TransactionCanceledException"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = ", ".join(r["Code"] for r in reasons)
        super().__init__(
            f"Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{codes}]"
        )
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        return {**super().body(), "CancellationReasons": self.reasons}


class StoreUnavailable(TablesError, ServerError):
    aws_type = "InternalServerError"
    status = 500
