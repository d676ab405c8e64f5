import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.credentials import AzureKeyCredential

from callsign_harness import start_server

# Every api-version azure-communication-identity 1.5.0 knows (its _api_versions.ApiVersion).
API_VERSIONS = ["2021-03-07", "2022-06-01", "2022-10-01", "2023-10-01"]


@pytest.fixture(scope="session", params=["http", "tls"])
def server(request):
    """One callsign server per transport for the whole session."""
    srv = start_server(tls=request.param == "tls")
    try:
        yield srv
    finally:
        srv.stop()


def make_client(server, api_version=None, access_key=None):
    """The official client, built the way a user would for this transport.

    http: CommunicationIdentityClient(endpoint, AzureKeyCredential(key)).
          The endpoint is passed without its trailing '/': the SDK's HMAC policy signs
          the host as the endpoint minus its scheme, so 'http://h:p/' would be signed as
          'h:p/' (the SDK's own tests pass the endpoint parsed from a connection string,
          which has the '/' stripped).
    tls:  CommunicationIdentityClient.from_connection_string(conn_str), which always
          uses https, with the server's dev CA trusted via connection_verify.
    """
    kwargs = {}
    transport = server.sdk_transport()
    if transport is not None:
        kwargs["transport"] = transport
    if api_version is not None:
        kwargs["api_version"] = api_version
    key = access_key if access_key is not None else server.access_key
    if server.transport == "http":
        return CommunicationIdentityClient(
            server.endpoint_no_slash, AzureKeyCredential(key), **kwargs
        )
    conn = server.connection_string
    if access_key is not None:
        conn = "endpoint={};accesskey={}".format(server.endpoint, access_key)
    return CommunicationIdentityClient.from_connection_string(
        conn, connection_verify=server.ca_path, **kwargs
    )


@pytest.fixture(params=API_VERSIONS)
def api_version(request):
    return request.param


@pytest.fixture
def client(server, api_version):
    return make_client(server, api_version)
