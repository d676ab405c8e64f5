"""Conformance: azure-communication-identity 1.5.0 (the official Python client) against callsign.

Every test runs for each transport (plain http with AzureKeyCredential, TLS with a connection
string) and each api-version the client knows (see conftest.py).
"""

import base64
import binascii
import json
import re
import time
import uuid
from datetime import datetime, timedelta

import pytest
from azure.communication.identity import (
    CommunicationTokenScope,
    CommunicationUserIdentifier,
)
from azure.communication.identity._shared.user_credential import CommunicationTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from callsign_harness import MIN_MINUTES
from conftest import make_client

ALL_SCOPES = [
    CommunicationTokenScope.CHAT,
    CommunicationTokenScope.VOIP,
    CommunicationTokenScope.CHAT_JOIN,
    CommunicationTokenScope.CHAT_JOIN_LIMITED,
    CommunicationTokenScope.VOIP_JOIN,
]
BASE_SCOPES = {"chat", "voip"}
# docs/protocol.md §1: 2021-03-07..2022-10-01 know only chat and voip.
JOIN_SCOPE_VERSIONS = {"2023-10-01"}
# docs/protocol.md §1: expiresInMinutes exists from 2022-10-01; older versions ignore the field.
EXPIRY_VERSIONS = {"2022-10-01", "2023-10-01"}

DEFAULT_MINUTES = 1440
ID_RE = re.compile(
    r"^8:acs:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
EXPIRES_ON_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}\+00:00$")
FOREIGN_RESOURCE = "00000000-0000-0000-0000-000000000000"


def scope_allowed(api_version, scope):
    return str(scope.value if hasattr(scope, "value") else scope) in BASE_SCOPES or (
        api_version in JOIN_SCOPE_VERSIONS
    )


# ---------------------------------------------------------------- helpers


def b64_standard(segment):
    """Decode a JWT segment the way the Python SDK does (standard alphabet)."""
    return base64.b64decode(segment + "==")


def b64url(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_jwt(token):
    parts = token.split(".")
    assert len(parts) == 3, f"token is not a 3-part JWT: {token!r}"
    header = json.loads(b64url(parts[0]))
    # docs/protocol.md §4: the Python client decodes the payload with the standard base64
    # alphabet, so the payload segment must contain no '-' or '_' and be ASCII JSON.
    assert "-" not in parts[1] and "_" not in parts[1], f"payload segment not std-b64 safe: {parts[1]}"
    raw = b64_standard(parts[1])
    payload = json.loads(raw.decode("ascii"))
    assert parts[2], "empty signature segment"
    return header, payload


def parse_expires_on(value):
    assert isinstance(value, str), f"expires_on should be the service's string, got {value!r}"
    assert EXPIRES_ON_RE.match(value), f"expiresOn {value!r} is not ISO 8601 with 7 fractional digits and +00:00"
    return datetime.fromisoformat(value)


def resource_of(raw_id):
    m = ID_RE.match(raw_id)
    assert m, f"identity id {raw_id!r} is not 8:acs:<guid>_<guid>"
    return m.group(1)


def check_user(user):
    assert isinstance(user, CommunicationUserIdentifier)
    assert user.properties["id"] == user.raw_id
    resource_of(user.raw_id)


def check_token(access_token, user_id, scopes, minutes, issued_after):
    """Checks an AccessToken returned by the client against docs/protocol.md §1 and §4."""
    token, expires_on = access_token.token, access_token.expires_on
    expires_dt = parse_expires_on(expires_on)
    header, payload = decode_jwt(token)

    assert header.get("alg") == "RS256", header
    assert header.get("typ") == "JWT", header
    kid = header.get("kid")
    assert isinstance(kid, str) and re.fullmatch(r"[0-9A-F]{40}", kid), header
    assert b64url(header.get("x5t", "")) == binascii.unhexlify(kid), header

    # exp must be what expiresOn says, to the second, and expiresOn has no sub-second part.
    assert payload["exp"] == int(expires_dt.timestamp()), (payload["exp"], expires_on)
    assert expires_dt.microsecond == 0, expires_on
    # The SDK's own token credential must be able to parse the token and read exp.
    cred = CommunicationTokenCredential(token)
    assert cred.get_token().expires_on == payload["exp"]

    # Lifetime within 5 % of the requested number of minutes, counted from the request.
    expected = issued_after + minutes * 60
    tolerance = 0.05 * minutes * 60
    assert abs(payload["exp"] - expected) <= tolerance, (
        f"exp {payload['exp']} not within 5% of now+{minutes}min ({expected})"
    )
    iat = payload["iat"]
    assert isinstance(iat, int)
    assert issued_after - 5 <= iat <= time.time() + 5, (iat, issued_after)
    assert payload["exp"] - iat == pytest.approx(minutes * 60, abs=tolerance)

    # Claims the clients and downstream services read.
    assert payload["skypeid"] == user_id[len("8:"):], payload
    assert payload["resourceId"] == resource_of(user_id), payload
    assert payload["csi"] == str(iat), payload
    assert isinstance(payload["scp"], int), payload
    want = sorted(str(getattr(s, "value", s)) for s in scopes)
    assert sorted(payload["acsScope"].split(",")) == want, payload
    assert payload.get("jti"), f"token has no jti: {payload}"
    return payload


def assert_error(exc, exc_type, status, code, message=None, target=None):
    assert type(exc) is exc_type, f"expected {exc_type.__name__}, got {type(exc).__name__}: {exc}"
    assert exc.status_code == status, f"status {exc.status_code}: {exc}"
    assert exc.error is not None, f"error body not parsed by the SDK: {exc}"
    assert exc.error.code == code, f"code {exc.error.code!r}: {exc}"
    if message is not None:
        assert exc.error.message == message, exc.error.message
    if target is not None:
        assert exc.error.target == target, exc.error.target


def capture_error(fn, *args, **kwargs):
    with pytest.raises(HttpResponseError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- create_user


def test_create_user(client):
    a = client.create_user()
    b = client.create_user()
    check_user(a)
    check_user(b)
    assert a.raw_id != b.raw_id
    assert resource_of(a.raw_id) == resource_of(b.raw_id)


# ---------------------------------------------------------------- tokens, default expiry


def test_create_user_and_token_default_expiry(client):
    now = time.time()
    user, token = client.create_user_and_token([CommunicationTokenScope.CHAT])
    check_user(user)
    check_token(token, user.raw_id, ["chat"], DEFAULT_MINUTES, now)


def test_get_token_default_expiry(client):
    user = client.create_user()
    now = time.time()
    token = client.get_token(user, [CommunicationTokenScope.VOIP])
    check_token(token, user.raw_id, ["voip"], DEFAULT_MINUTES, now)


def test_tokens_are_unique(client):
    user = client.create_user()
    t1 = client.get_token(user, ["chat"])
    t2 = client.get_token(user, ["chat"])
    assert t1.token != t2.token
    assert decode_jwt(t1.token)[1]["jti"] != decode_jwt(t2.token)[1]["jti"]


# ---------------------------------------------------------------- scopes


@pytest.mark.parametrize("scope", ALL_SCOPES, ids=lambda s: s.value)
def test_single_scope(client, api_version, scope):
    user = client.create_user()
    if scope_allowed(api_version, scope):
        now = time.time()
        u2, tok = client.create_user_and_token([scope])
        check_token(tok, u2.raw_id, [scope], DEFAULT_MINUTES, now)
        tok = client.get_token(user, [scope])
        check_token(tok, user.raw_id, [scope], DEFAULT_MINUTES, now)
    else:
        err = capture_error(client.create_user_and_token, [scope])
        assert_error(err, HttpResponseError, 400, "ValidationError")
        err = capture_error(client.get_token, user, [scope])
        assert_error(err, HttpResponseError, 400, "ValidationError")


def test_multiple_scopes(client, api_version):
    now = time.time()
    scopes = [CommunicationTokenScope.CHAT, CommunicationTokenScope.VOIP]
    user, tok = client.create_user_and_token(scopes)
    check_token(tok, user.raw_id, scopes, DEFAULT_MINUTES, now)
    # Plain strings work as well as the enum.
    tok = client.get_token(user, ["voip", "chat"])
    check_token(tok, user.raw_id, ["chat", "voip"], DEFAULT_MINUTES, now)

    join = [CommunicationTokenScope.CHAT_JOIN_LIMITED, CommunicationTokenScope.VOIP_JOIN]
    if api_version in JOIN_SCOPE_VERSIONS:
        tok = client.get_token(user, join)
        check_token(tok, user.raw_id, join, DEFAULT_MINUTES, now)
    else:
        err = capture_error(client.get_token, user, join)
        assert_error(err, HttpResponseError, 400, "ValidationError")


def test_unknown_scope_rejected(client):
    user = client.create_user()
    err = capture_error(client.get_token, user, ["notascope"])
    assert_error(err, HttpResponseError, 400, "ValidationError")
    err = capture_error(client.create_user_and_token, ["chat", "notascope"])
    assert_error(err, HttpResponseError, 400, "ValidationError")


def test_empty_scopes_rejected(client):
    user = client.create_user()
    err = capture_error(client.get_token, user, [])
    assert_error(
        err, HttpResponseError, 400, "ValidationError",
        message="Invalid scopes - Scopes field is required.", target="scopes",
    )


# ---------------------------------------------------------------- expiry bounds


@pytest.mark.parametrize("minutes", [60, 1440])
def test_expiry_in_bounds(client, api_version, minutes):
    # Before 2022-10-01 the client still sends expiresInMinutes, and the server ignores it.
    expect = minutes if api_version in EXPIRY_VERSIONS else DEFAULT_MINUTES
    now = time.time()
    user, tok = client.create_user_and_token(
        [CommunicationTokenScope.CHAT], token_expires_in=timedelta(minutes=minutes)
    )
    check_token(tok, user.raw_id, ["chat"], expect, now)
    tok = client.get_token(
        user, [CommunicationTokenScope.VOIP], token_expires_in=timedelta(minutes=minutes)
    )
    check_token(tok, user.raw_id, ["voip"], expect, now)


@pytest.mark.parametrize("minutes", [MIN_MINUTES - 1, 1441])
def test_expiry_out_of_bounds(client, api_version, minutes):
    user = client.create_user()
    if api_version not in EXPIRY_VERSIONS:
        # The field does not exist in this version: ignored, default lifetime.
        now = time.time()
        tok = client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=minutes))
        check_token(tok, user.raw_id, ["chat"], DEFAULT_MINUTES, now)
        return
    message = (
        f"ExpiresInMinutes value {minutes} is invalid. "
        f"Value must be within the [{MIN_MINUTES}, 1440] interval."
    )
    err = capture_error(
        client.create_user_and_token, ["chat"], token_expires_in=timedelta(minutes=minutes)
    )
    assert_error(err, HttpResponseError, 400, "ValidationError", message, "ExpiresInMinutes")
    err = capture_error(
        client.get_token, user, ["chat"], token_expires_in=timedelta(minutes=minutes)
    )
    assert_error(err, HttpResponseError, 400, "ValidationError", message, "ExpiresInMinutes")


# ---------------------------------------------------------------- revoke / delete


def test_revoke_tokens(client):
    now = time.time()
    user, old = client.create_user_and_token(["chat"])
    assert client.revoke_tokens(user) is None
    # A token issued after revoke returns is issued normally.
    new = client.get_token(user, ["chat"])
    check_token(new, user.raw_id, ["chat"], DEFAULT_MINUTES, now)
    assert new.token != old.token
    # Revoking again is fine.
    assert client.revoke_tokens(user) is None


def test_delete_user(client):
    user, _ = client.create_user_and_token(["voip"])
    assert client.delete_user(user) is None

    err = capture_error(client.get_token, user, ["voip"])
    assert_error(err, ResourceNotFoundError, 404, "IdentityNotFound", "Identity not found.")
    err = capture_error(client.revoke_tokens, user)
    assert_error(err, ResourceNotFoundError, 404, "IdentityNotFound", "Identity not found.")
    err = capture_error(client.delete_user, user)
    assert_error(err, ResourceNotFoundError, 404, "IdentityNotFound", "Identity not found.")


def test_unknown_identity_of_this_resource(client):
    resource = resource_of(client.create_user().raw_id)
    ghost = CommunicationUserIdentifier(f"8:acs:{resource}_{uuid.uuid4()}")
    err = capture_error(client.get_token, ghost, ["chat"])
    assert_error(err, ResourceNotFoundError, 404, "IdentityNotFound", "Identity not found.")


# ---------------------------------------------------------------- errors


def foreign_id(client):
    resource = resource_of(client.create_user().raw_id)
    other = FOREIGN_RESOURCE if resource != FOREIGN_RESOURCE else str(uuid.uuid4())
    return CommunicationUserIdentifier(f"8:acs:{other}_{FOREIGN_RESOURCE}")


@pytest.mark.parametrize("operation", ["get_token", "revoke_tokens", "delete_user"])
def test_identity_not_owned(client, operation):
    other = foreign_id(client)
    if operation == "get_token":
        err = capture_error(client.get_token, other, ["chat"])
    else:
        err = capture_error(getattr(client, operation), other)
    assert_error(
        err, ClientAuthenticationError, 401, "IdentityNotOwned",
        "Provided identity doesn't belong to the resource.",
    )


def test_malformed_identity(client):
    bad = CommunicationUserIdentifier("not-an-identity")
    err = capture_error(client.get_token, bad, ["chat"])
    assert_error(
        err, HttpResponseError, 400, "ValidationError", "Provided identity has invalid format."
    )


def test_wrong_access_key(server, api_version):
    other_key = base64.b64encode(uuid.uuid4().bytes * 2).decode("ascii")
    bad = make_client(server, api_version, access_key=other_key)
    for call in (
        lambda: bad.create_user(),
        lambda: bad.create_user_and_token(["chat"]),
        lambda: bad.get_token(CommunicationUserIdentifier(f"8:acs:{FOREIGN_RESOURCE}_{uuid.uuid4()}"), ["chat"]),
    ):
        err = capture_error(call)
        assert_error(err, ClientAuthenticationError, 401, "Denied", "Denied by the resource provider.")


def test_response_headers(client, api_version):
    seen = []

    def hook(response):
        seen.append(response)

    request_id = str(uuid.uuid4())
    user = client.create_user(
        headers={"x-ms-client-request-id": request_id}, raw_response_hook=hook
    )
    check_user(user)
    resp = seen[-1].http_response
    assert resp.status_code == 201
    assert resp.headers.get("x-ms-client-request-id") == request_id
    assert resp.headers.get("content-type", "").startswith("application/json")
    supported = [v.strip() for v in resp.headers.get("api-supported-versions", "").split(",")]
    assert api_version in supported, resp.headers.get("api-supported-versions")
