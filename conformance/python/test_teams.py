"""Conformance: the official Python client's Teams user exchange (get_token_for_teams_user) against
callsign trusting a local test issuer.

The issuer stands in for Entra ID: an RSA key generated with the openssl command line, its JWKS in a
file the server is configured with, and tokens signed here (openssl does the RSA signature).
"""

import base64
import json
import os
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from callsign_harness import start_server
from conftest import make_client

ISSUER = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUDIENCE = "https://auth.msft.communication.azure.com"
APP_ID = str(uuid.uuid4())
USER_ID = str(uuid.uuid4())
KID = "callsign-conformance-key"
# Versions of azure-communication-identity 1.5.0 that have the Teams exchange.
TEAMS_VERSIONS = ["2022-06-01", "2022-10-01", "2023-10-01"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class LocalIssuer:
    def __init__(self, workdir: str):
        self.key = os.path.join(workdir, "issuer-key.pem")
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", self.key],
            check=True, capture_output=True,
        )
        out = subprocess.run(
            ["openssl", "rsa", "-in", self.key, "-noout", "-modulus"],
            check=True, capture_output=True, text=True,
        ).stdout
        modulus = bytes.fromhex(out.strip().split("=", 1)[1])
        self.jwks_file = os.path.join(workdir, "issuer-keys.json")
        with open(self.jwks_file, "w") as f:
            json.dump({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
                                 "n": b64url(modulus), "e": b64url((65537).to_bytes(3, "big"))}]}, f)

    def token(self, **overrides) -> str:
        now = int(time.time())
        claims = {"aud": AUDIENCE, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
                  "appid": APP_ID, "oid": USER_ID, "tid": TENANT,
                  "scp": "Teams.ManageCalls Teams.ManageChats"}
        claims.update(overrides)
        header = {"alg": "RS256", "kid": KID, "typ": "JWT"}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key],
            input=signing_input.encode(), check=True, capture_output=True,
        ).stdout
        return signing_input + "." + b64url(signature)


@pytest.fixture(scope="module")
def issuer():
    workdir = tempfile.mkdtemp(prefix="callsign-issuer-")
    return LocalIssuer(workdir)


@pytest.fixture(scope="module", params=["http", "tls"])
def teams_server(request, issuer):
    config = os.path.join(os.path.dirname(issuer.jwks_file), "callsign.toml")
    with open(config, "w") as f:
        f.write(
            "[[trusted_issuers]]\n"
            f"issuer = \"{ISSUER}\"\n"
            f"jwks_file = \"{issuer.jwks_file}\"\n"
            f"tenant_id = \"{TENANT}\"\n"
        )
    srv = start_server(tls=request.param == "tls", extra_args=["--config", config])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("api_version", TEAMS_VERSIONS)
def test_get_token_for_teams_user(teams_server, issuer, api_version):
    client = make_client(teams_server, api_version)
    token = issuer.token()
    before = int(time.time())
    result = client.get_token_for_teams_user(token, APP_ID, USER_ID)
    payload = result.token.split(".")[1]
    claims = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["skypeid"] == "orgid:" + USER_ID
    # The token expires with the Entra token (one hour). azure-communication-identity 1.5.0 hands
    # expires_on through as the wire string.
    assert abs(claims["exp"] - (before + 3600)) <= 5
    expected = datetime.fromtimestamp(claims["exp"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert str(result.expires_on) == expected + ".0000000+00:00"


@pytest.mark.parametrize("api_version", TEAMS_VERSIONS)
def test_bad_and_expired_teams_tokens_are_rejected(teams_server, issuer, api_version):
    client = make_client(teams_server, api_version)
    now = int(time.time())
    for token in [issuer.token(exp=now - 10), issuer.token(iss="https://evil.example/"),
                  issuer.token(aud="https://communication.azure.com"), "not-a-token"]:
        with pytest.raises(ClientAuthenticationError) as err:
            client.get_token_for_teams_user(token, APP_ID, USER_ID)
        assert err.value.status_code == 401
        assert "Provided access token is not valid." in str(err.value)


@pytest.mark.parametrize("api_version", TEAMS_VERSIONS)
def test_app_and_user_mismatch_are_400(teams_server, issuer, api_version):
    client = make_client(teams_server, api_version)
    token = issuer.token()
    with pytest.raises(HttpResponseError) as err:
        client.get_token_for_teams_user(token, str(uuid.uuid4()), USER_ID)
    assert err.value.status_code == 400
    assert "AAD application is not the expected one." in str(err.value)
    with pytest.raises(HttpResponseError) as err:
        client.get_token_for_teams_user(token, APP_ID, str(uuid.uuid4()))
    assert err.value.status_code == 400
    assert "Provided AAD token issued for unexpected user." in str(err.value)
    with pytest.raises(HttpResponseError) as err:
        client.get_token_for_teams_user(token, "not-a-guid", USER_ID)
    assert err.value.status_code == 400
    assert "Provided AppId has invalid format." in str(err.value)
