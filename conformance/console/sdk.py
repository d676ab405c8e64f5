"""The official Python SDK's side of the console's browser tests (console.test.js).

Run with the conformance venv's Python (conformance/setup.sh installs azure-communication-identity
there), with CALLSIGN_CONNECTION_STRING and REQUESTS_CA_BUNDLE set for the server under test.
Prints one JSON object:

  sdk.py create-user-and-token   {"id": ..., "token": ...}   (CommunicationIdentityClient)
  sdk.py check-token TOKEN       {"sdkExpiresOn": ..., "active": ..., "reason": ..., "sub": ...}

check-token hands the token to the SDK's CommunicationTokenCredential (what chat and calling
clients are given; it parses the token and reads its expiry), then asks the server whether it
accepts the token now: callsign's introspection (docs/protocol.md §7.2), signed by the SDK's own
HMAC policy with the access key.
"""

import json
import os
import sys

from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.communication.identity._shared.policy import HMACCredentialsPolicy
from azure.communication.identity._shared.user_credential import CommunicationTokenCredential
from azure.core import PipelineClient
from azure.core.credentials import AzureKeyCredential
from azure.core.rest import HttpRequest


def connection():
    fields = dict(
        part.split("=", 1) for part in os.environ["CALLSIGN_CONNECTION_STRING"].split(";") if part
    )
    return fields["endpoint"].rstrip("/"), fields["accesskey"]


def create_user_and_token():
    client = CommunicationIdentityClient.from_connection_string(
        os.environ["CALLSIGN_CONNECTION_STRING"]
    )
    user, token = client.create_user_and_token([CommunicationTokenScope.CHAT])
    return {"id": user.raw_id, "token": token.token}


def check_token(token):
    credential = CommunicationTokenCredential(token)
    expires_on = credential.get_token().expires_on
    endpoint, key = connection()
    client = PipelineClient(
        base_url=endpoint,
        policies=[HMACCredentialsPolicy(endpoint, AzureKeyCredential(key))],
    )
    request = HttpRequest(
        "POST",
        f"{endpoint}/callsign/tokens/:introspect",
        json={"token": token},
    )
    with client:
        response = client.send_request(request)
        response.raise_for_status()
        verdict = response.json()
    return {
        "sdkExpiresOn": expires_on,
        "active": verdict["active"],
        "reason": verdict.get("reason"),
        "sub": verdict.get("sub"),
    }


def main():
    command = sys.argv[1]
    if command == "create-user-and-token":
        result = create_user_and_token()
    elif command == "check-token":
        result = check_token(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
