"""The buckets component's exception tree; the S3 API answers each as S3's XML error document.

``BucketError`` (base: ``code``, ``status``, ``message``, ``fields`` — extra elements of the
``<Error>`` document such as ``Key`` or ``BucketName``) and one subclass per S3 error code:

- 400: ``InvalidBucketName``, ``InvalidArgument``, ``InvalidDigest``, ``BadDigest``,
  ``MalformedXML``, ``InvalidRequest``, ``EntityTooSmall``, ``InvalidPart``,
  ``InvalidPartOrder``, ``KeyTooLongError``, ``MetadataTooLarge``, ``IncompleteBody``,
  ``XAmzContentSHA256Mismatch``
- 403: ``AccessDenied`` (an expired presigned URL), ``SignatureDoesNotMatch``
- 404: ``NoSuchBucket``, ``NoSuchKey``, ``NoSuchUpload``
- 405: ``MethodNotAllowed``
- 409: ``BucketAlreadyOwnedByYou``, ``BucketNotEmpty``
- 412: ``PreconditionFailed``; 416: ``InvalidRange``; 501: ``NotImplemented``

``NotModified`` (304) is raised by the conditional-request checks too; it is answered without
a body, as S3 does.
"""

from __future__ import annotations


class BucketError(Exception):
    """An S3 error: ``code`` and ``status`` as S3 answers them."""

    code = "InternalError"
    status = 500
    default_message = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, **fields: str) -> None:
        self.message = message or self.default_message
        self.fields = fields
        super().__init__(self.message)


def _error(code: str, status: int, message: str) -> type[BucketError]:
    return type(code, (BucketError,), {"code": code, "status": status, "default_message": message})


class NotModified(BucketError):
    code = "NotModified"
    status = 304
    default_message = "Not Modified"


InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")
BadDigest = _error(
    "BadDigest", 400, "The Content-MD5 you specified did not match what we received."
)
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
)
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
EntityTooSmall = _error(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."
)
InvalidPart = _error(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found.  The part may not have been "
    "uploaded, or the specified entity tag may not match the part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. Parts must be ordered by part number.",
)
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long")
MetadataTooLarge = _error(
    "MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."
)
IncompleteBody = _error(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header",
)
ContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
AccessDenied = _error("AccessDenied", 403, "Access Denied")
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified upload does not exist. The upload ID may be invalid, or the upload may "
    "have been aborted or completed.",
)
MethodNotAllowed = _error(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
PreconditionFailed = _error(
    "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"
)
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
NotImplementedError_ = _error(
    "NotImplemented",
    501,
    "A header or query you provided implies functionality that is not implemented.",
)
