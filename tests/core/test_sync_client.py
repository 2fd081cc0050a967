"""sync/client.py against a real local HTTP server (and httpx.MockTransport for transport failures): headers,
every error mapping with its exit code, no redirects, timeouts, the HTTPS rule, and the token never in a
message or repr."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from practiceplan import __version__
from practiceplan.errors import (
    ExitCode,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
    RemoteRejectedError,
    RemoteUnavailableError,
    RetryLaterError,
)
from practiceplan.sync.client import Client, Response, check_url, retry_after_seconds
from tests.conftest import FIXED_NOW
from tests.remote_server import FakeServer, closed_port

TOKEN = "CANARY-client-8f3e2a1b9c"
DEVICE = "dev_abcdefghijklmnop"


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as srv:
        yield srv


def client(url: str, token: str | None = TOKEN, **kwargs) -> Client:
    return Client(url, token, DEVICE, **kwargs)


def assert_clean(error: BaseException) -> None:
    text = f"{error} {getattr(error, 'message', '')} {getattr(error, 'hint', '')} {error!r}"
    assert TOKEN not in text, text
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "httpx's exception must not be chained"


# ------------------------------------------------------------------------------------------------ success

def test_status_sends_every_header(server):
    with client(server.url) as c:
        assert c.status() == {"lastSyncTime": None, "syncToken": None, "pendingChanges": 0, "deviceCount": 1,
                              "entityCount": 0}
    seen = server.requests[-1]
    assert (seen.method, seen.path) == ("GET", "/api/sync/status")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-device-id"] == DEVICE
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == f"practiceplan/{__version__}"
    assert "x-idempotency-key" not in seen.headers


def test_no_token_no_authorization_header(server):
    server.token = None
    with client(server.url, token=None) as c:
        c.status()
    assert "authorization" not in server.requests[-1].headers


def test_pull_sends_a_json_body(server):
    with client(server.url) as c:
        assert c.pull()["syncToken"] == "sync_x"
        c.pull({"types": ["entries"]})
    assert [json.loads(r.body) for r in server.requests] == [{}, {"types": ["entries"]}]
    assert server.requests[0].method == "POST" and server.requests[0].path == "/api/sync/pull"


def test_push_sends_the_body_verbatim_with_the_idempotency_key(server):
    body = b'{"changes": {"entries": []},   "x": "\xc3\xa9"}'
    with client(server.url) as c:
        answer = c.push(body, "key-123")
    assert answer == Response(200, {"success": True, "syncToken": "sync_y", "conflicts": []}, False)
    seen = server.requests[-1]
    assert seen.body == body and seen.headers["x-idempotency-key"] == "key-123"
    assert seen.headers["x-device-id"] == DEVICE


def test_push_replay_header(server):
    server.reply("POST", "/api/sync/push", 200, {"success": True}, headers={"X-Idempotent-Replay": "true"})
    with client(server.url) as c:
        assert c.push(b"{}", "k").replay is True


def test_adopt_posts_template_and_customization(server):
    server.reply("POST", "/api/templates/adopt", 201, {"success": True, "plan": {"id": "plan_1"}})
    with client(server.url) as c:
        assert c.adopt("tmpl_1", {"title": "Mine"}) == {"success": True, "plan": {"id": "plan_1"}}
    assert json.loads(server.requests[-1].body) == {"templateId": "tmpl_1", "customization": {"title": "Mine"}}


def test_adopt_unknown_template_is_not_found(server):
    server.reply("POST", "/api/templates/adopt", 404, {"error": "Template not found"})
    with client(server.url) as c, pytest.raises(NotFoundError) as caught:
        c.adopt("tmpl_x", {})
    assert caught.value.exit_code == ExitCode.NOT_FOUND


# ------------------------------------------------------------------------------------------------ status codes

@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_77(server, status):
    server.reply("GET", "/api/sync/status", status, {"success": False, "error": "Invalid or expired token"})
    with client(server.url) as c, pytest.raises(NotAuthorisedError) as caught:
        c.status()
    error = caught.value
    assert error.exit_code == 77 and f"HTTP {status}" in error.message and "practiceplan login" in error.hint
    assert "127.0.0.1" in error.message
    assert_clean(error)


def test_wrong_token_is_refused_by_the_server(server):
    with client(server.url, token="another-token") as c, pytest.raises(NotAuthorisedError):
        c.status()


def test_429_with_delta_seconds(server):
    server.reply("POST", "/api/sync/push", 429, {"error": "slow down"}, headers={"Retry-After": "120"})
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert caught.value.exit_code == 75 and caught.value.status == 429 and caught.value.retry_after == 120.0
    assert_clean(caught.value)


def test_429_with_http_date(server):
    fixed = datetime.fromisoformat(FIXED_NOW.replace("Z", "+00:00"))
    when = format_datetime(fixed + timedelta(seconds=90), usegmt=True)
    server.reply("POST", "/api/sync/push", 429, None, headers={"Retry-After": when})
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert caught.value.retry_after == 90.0 and caught.value.status == 429


def test_retry_after_forms():
    past = format_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert retry_after_seconds("0") == 0.0 and retry_after_seconds(" 7 ") == 7.0
    assert retry_after_seconds(past) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None and retry_after_seconds("") is None


def test_429_without_retry_after(server):
    server.reply("GET", "/api/sync/status", 429)
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.status()
    assert caught.value.retry_after is None and caught.value.status == 429


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retry_later(server, status):
    server.reply("POST", "/api/sync/push", status, {"success": False, "error": "Internal server error"})
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert caught.value.status == status and caught.value.exit_code == 75
    assert f"HTTP {status}" in caught.value.message


@pytest.mark.parametrize("status", [400, 413, 422])
def test_rejected_requests_keep_status_and_body(server, status):
    body = {"success": False, "error": "Invalid request body", "code": status}
    server.reply("POST", "/api/sync/push", status, body)
    with client(server.url) as c, pytest.raises(RemoteRejectedError) as caught:
        c.push(b"{}", "k")
    assert caught.value.exit_code == 65 and caught.value.status == status and caught.value.body == body
    assert "Invalid request body" in caught.value.message


def test_rejected_without_json_body(server):
    server.reply("POST", "/api/sync/push", 400, b"<html>bad</html>")
    with client(server.url) as c, pytest.raises(RemoteRejectedError) as caught:
        c.push(b"{}", "k")
    assert caught.value.body is None and caught.value.status == 400


def test_404_is_not_a_sync_server(server):
    server.reply("GET", "/api/sync/status", 404, {"success": False, "error": "Not found", "code": 404})
    with client(server.url) as c, pytest.raises(RemoteUnavailableError) as caught:
        c.status()
    assert caught.value.exit_code == 69
    assert f"{server.url} is not a practiceplan/Mirubato sync server" in caught.value.message


def test_redirect_is_not_followed(server):
    server.reply("GET", "/api/sync/status", 301, None, headers={"Location": "https://elsewhere.example/api/sync/status"})
    with client(server.url) as c, pytest.raises(RemoteUnavailableError) as caught:
        c.status()
    assert "https://elsewhere.example/api/sync/status" in caught.value.message
    assert "HTTP 301" in caught.value.message and "remote set" in caught.value.hint
    assert len(server.requests) == 1  # nothing followed
    assert_clean(caught.value)


def test_a_server_echoing_the_token_is_redacted(server):
    server.reply("GET", "/api/sync/status", 401, {"error": f"bad token {TOKEN}"})
    with client(server.url) as c, pytest.raises(NotAuthorisedError) as caught:
        c.status()
    assert "bad token ***" in caught.value.message
    assert_clean(caught.value)


# ------------------------------------------------------------------------------------------------ broken answers

def test_read_timeout_is_retry_later_with_unknown_outcome(server):
    server.reply("POST", "/api/sync/push", 200, {"success": True}, delay=1.0)
    with client(server.url, timeout=0.2) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert "outcome is unknown" in caught.value.message and "0.2s" in caught.value.message
    assert caught.value.status is None
    assert_clean(caught.value)


@pytest.mark.parametrize("body", [b'{"success": true, "conf', b"[1, 2]", b"", b"not json", b'"text"'])
def test_2xx_without_a_whole_json_object(server, body):
    server.reply("POST", "/api/sync/push", 200, body)
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert "outcome is unknown" in caught.value.message and caught.value.status == 200


def test_body_cut_short_mid_response(server):
    server.reply("POST", "/api/sync/push", 200, b'{"success": true}', fault="truncate")
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert "outcome is unknown" in caught.value.message
    assert_clean(caught.value)


def test_connection_closed_without_an_answer(server):
    server.reply("POST", "/api/sync/push", fault="close")
    with client(server.url) as c, pytest.raises(RetryLaterError) as caught:
        c.push(b"{}", "k")
    assert "outcome is unknown" in caught.value.message
    assert_clean(caught.value)


def test_loopback_ignores_proxies_from_the_environment(server, monkeypatch):
    port = closed_port()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with client(server.url) as c:
        assert c.status()["entityCount"] == 0  # straight to the server, not the (dead) proxy


def test_connection_refused_is_69():
    port = closed_port()
    with client(f"http://127.0.0.1:{port}") as c, pytest.raises(RemoteUnavailableError) as caught:
        c.status()
    error = caught.value
    assert error.exit_code == 69 and f"127.0.0.1:{port}" in error.message
    assert error.hint == "check the address with `practiceplan remote show` and your connection"
    assert_clean(error)


def test_tls_failure_is_69(server):
    """https:// to a plain-HTTP server: the TLS handshake fails."""
    with client(f"https://127.0.0.1:{server.port}", timeout=5) as c, pytest.raises(RemoteUnavailableError) as caught:
        c.status()
    assert f"127.0.0.1:{server.port}" in caught.value.message
    assert_clean(caught.value)


@pytest.mark.parametrize("raised,expected", [
    (httpx.ConnectError("[Errno -2] Name or service not known"), RemoteUnavailableError),
    (httpx.ConnectTimeout("timed out"), RemoteUnavailableError),
    (httpx.ReadTimeout("timed out"), RetryLaterError),
    (httpx.WriteTimeout("timed out"), RetryLaterError),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), RetryLaterError),
    (httpx.ReadError("connection reset"), RetryLaterError),
    (httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'"), RetryLaterError),
])
def test_transport_failures_map(raised, expected):
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with client("https://sync.example.com", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(expected) as caught:
            c.status()
    assert "sync.example.com" in caught.value.message and str(raised) not in caught.value.message
    assert_clean(caught.value)


def test_mock_transport_sees_headers_and_404_from_unknown_host_path():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": "Not found"})

    with client("https://sync.example.com/base/", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(RemoteUnavailableError):
            c.status()
    assert str(seen[0].url) == "https://sync.example.com/base/api/sync/status"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


# ------------------------------------------------------------------------------------------------ URL and token

@pytest.mark.parametrize("url,expected", [
    ("https://sync.example.com/", "https://sync.example.com"),
    ("HTTPS://Sync.Example.COM:8443/mirubato//", "https://sync.example.com:8443/mirubato"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("http://127.3.4.5/", "http://127.3.4.5"),
    ("http://localhost:9797", "http://localhost:9797"),
    ("http://[::1]:8000/", "http://[::1]:8000"),
    ("http://[::1]", "http://[::1]"),
    ("  https://a.example  ", "https://a.example"),
])
def test_check_url_accepts(url, expected):
    assert check_url(url) == expected


@pytest.mark.parametrize("url,needle", [
    ("http://example.com", "HTTPS is required"),
    ("http://192.168.1.10:8000", "HTTPS is required"),
    ("http://localhost.example.com", "HTTPS is required"),
    ("http://[::2]", "HTTPS is required"),
    ("ftp://example.com", "http(s)"),
    ("example.com", "http(s)"),
    ("https://", "http(s)"),
    ("", "http(s)"),
    ("https://user:secret@example.com", "user name or password"),
    ("https://example.com/?a=1", "no query"),
    ("https://example.com/#x", "no query"),
    ("https://example.com:99999", "not a valid URL"),
])
def test_check_url_refuses(url, needle):
    with pytest.raises(InvalidInputError) as caught:
        check_url(url)
    assert needle in caught.value.message and caught.value.hint and caught.value.exit_code == 65
    assert "secret" not in caught.value.message


def test_client_refuses_plain_http_elsewhere():
    with pytest.raises(InvalidInputError):
        Client("http://example.com", TOKEN, DEVICE)


@pytest.mark.parametrize("bad", [f"{TOKEN}\nX-Evil: 1", f"{TOKEN} x", f"{TOKEN}\x00", f"{TOKEN}é", "x" * 9000])
def test_client_refuses_bad_tokens_without_saying_them(bad):
    with pytest.raises(InvalidInputError) as caught:
        Client("https://sync.example.com", bad, DEVICE)
    assert TOKEN not in caught.value.message and "x" * 50 not in caught.value.message


def test_repr_hides_the_token(server):
    c = client(server.url)
    try:
        assert TOKEN not in repr(c) and "<set>" in repr(c) and server.url in repr(c)
        assert TOKEN not in repr(c.__dict__.get("_http"))  # httpx masks Authorization in its own reprs too
    finally:
        c.close()
