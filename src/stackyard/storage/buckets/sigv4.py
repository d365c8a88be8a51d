"""Query authentication: the signature of a presigned URL, checked (SigV4, and SigV2, which
boto3 still makes for S3 in us-east-1 unless configured with ``signature_version="s3v4"``).

A presigned URL carries ``X-Amz-Algorithm=AWS4-HMAC-SHA256``, ``X-Amz-Credential=<key>/<date>/
<region>/s3/aws4_request``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders`` and
``X-Amz-Signature``. The signature is recomputed as AWS documents it (canonical request →
string to sign → HMAC chain of the secret over date, region, service, ``aws4_request``) with the
one secret the node gives every service and function (``AWS_SECRET_ACCESS_KEY``, ``stackyard``),
whatever the access key id. The payload of a presigned request is ``UNSIGNED-PAYLOAD``.

SigV2 (``AWSAccessKeyId``, ``Expires`` as epoch seconds, ``Signature``): base64 of HMAC-SHA1
over ``VERB\nContent-MD5\nContent-Type\nExpires\n<x-amz-* headers><resource>``, the
resource being ``/<bucket>/<key>`` plus the signed sub-resources of the query.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote

from .errors import AccessDenied, BucketError, InvalidArgument, SignatureDoesNotMatch

MAX_EXPIRES = 7 * 24 * 3600


_V2_SUBRESOURCES = frozenset(
    {
        "acl", "cors", "delete", "lifecycle", "location", "logging", "notification",
        "partNumber", "policy", "requestPayment", "response-cache-control",
        "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires", "restore",
        "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions",
        "website", "select", "select-type", "object-lock", "retention", "legal-hold",
    }
)  # fmt: skip


def is_presigned(query: Mapping[str, str]) -> bool:
    return "X-Amz-Signature" in query or ("Signature" in query and "AWSAccessKeyId" in query)


def verify_query(
    method: str,
    raw_path: str,
    raw_query: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    secret: str,
    bucket_in_host: str | None = None,
) -> None:
    """Check a presigned request, SigV4 or SigV2."""
    if "X-Amz-Signature" in query:
        verify_presigned(method, raw_path, raw_query, query, headers, secret)
    else:
        resource = f"/{bucket_in_host}{raw_path}" if bucket_in_host else raw_path
        verify_presigned_v2(method, resource, raw_query, query, headers, secret)


def verify_presigned_v2(
    method: str,
    resource: str,
    raw_query: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    secret: str,
    now: float | None = None,
) -> None:
    """Raise AccessDenied (expired), SignatureDoesNotMatch or InvalidArgument."""
    try:
        expires = int(query.get("Expires", ""))
    except ValueError:
        raise InvalidArgument("Expires is not a number", ArgumentName="Expires") from None
    current = time.time() if now is None else now
    if current > expires:
        raise _expired(expires, current)
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    signed = sorted(
        (name, value) for name, value in _query_pairs(raw_query) if name in _V2_SUBRESOURCES
    )
    if signed:
        resource += "?" + "&".join(f"{n}={v}" if v else n for n, v in signed)
    string_to_sign = "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            str(expires),
            "".join(f"{name}:{value}\n" for name, value in amz) + resource,
        ]
    )
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected, query.get("Signature", "")):
        raise SignatureDoesNotMatch(
            AWSAccessKeyId=query.get("AWSAccessKeyId", ""), StringToSign=string_to_sign
        )


def _expired(expires_at: float, current: float, **fields: str) -> BucketError:
    """The error for a presigned URL past its expiry: ``fields``, then ``Expires`` and
    ``ServerTime`` (UTC, ISO 8601)."""
    return AccessDenied(
        "Request has expired",
        **fields,
        Expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
        ServerTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(current)),
    )


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    query = sorted(
        (_encode(name), _encode(value))
        for name, value in _query_pairs(raw_query)
        if name != "X-Amz-Signature"
    )
    canonical_query = "&".join(f"{name}={value}" for name, value in query)
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers
    )
    return "\n".join(
        [
            method,
            raw_path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(
    secret: str, amz_date: str, scope: tuple[str, str, str], request: str
) -> tuple[str, str]:
    """(string to sign, hex signature) of a canonical ``request`` signed at ``amz_date`` in the
    credential scope ``(date, region, service)``."""
    date, region, service = scope
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(request.encode()).hexdigest(),
        ]
    )
    key = signing_key(secret, date, region, service)
    return string_to_sign, hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def presign(
    method: str,
    host: str,
    path: str,
    *,
    access_key: str,
    secret: str,
    region: str,
    expires: int,
    now: float | None = None,
) -> str:
    """``path`` (already URL-encoded) with a SigV4 query signature for ``method`` on ``host``:
    the URL :func:`verify_presigned` accepts until ``expires`` seconds have passed."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    params = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{access_key}/{amz_date[:8]}/{region}/s3/aws4_request"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    query = "&".join(f"{name}={_encode(value)}" for name, value in params)
    request = canonical_request(method, path, query, {"host": host}, ["host"], "UNSIGNED-PAYLOAD")
    _, signed = signature(secret, amz_date, (amz_date[:8], region, "s3"), request)
    return f"{path}?{query}&X-Amz-Signature={signed}"


def verify_presigned(
    method: str,
    raw_path: str,
    raw_query: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    secret: str,
    now: float | None = None,
) -> None:
    """Raise AccessDenied (expired), SignatureDoesNotMatch or InvalidArgument."""
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise InvalidArgument("Only AWS4-HMAC-SHA256 is supported", ArgumentName="X-Amz-Algorithm")
    credential = query.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise InvalidArgument("Invalid credential", ArgumentName="X-Amz-Credential")
    _, date, region, service, _ = credential
    amz_date = query.get("X-Amz-Date", "")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        expires = int(query.get("X-Amz-Expires", ""))
    except ValueError:
        raise InvalidArgument("X-Amz-Date or X-Amz-Expires is not valid") from None
    if not 1 <= expires <= MAX_EXPIRES:
        raise InvalidArgument(
            "X-Amz-Expires must be between 1 and 604800 seconds", ArgumentName="X-Amz-Expires"
        )
    current = time.time() if now is None else now
    if current > signed_at + expires:
        raise _expired(signed_at + expires, current, **{"X-Amz-Expires": str(expires)})
    signed_headers = [h for h in query.get("X-Amz-SignedHeaders", "host").lower().split(";") if h]
    payload_hash = query.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
    request = canonical_request(method, raw_path, raw_query, headers, signed_headers, payload_hash)
    string_to_sign, expected = signature(secret, amz_date, (date, region, service), request)
    if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
        raise SignatureDoesNotMatch(
            AWSAccessKeyId=credential[0], StringToSign=string_to_sign, CanonicalRequest=request
        )
