"""openapi_hooks.py - Schemathesis hooks for tests/integration/test_openapi.c.

Schemathesis (SCHEMATHESIS_HOOKS=openapi_hooks) generates requests from
docs/openapi.yaml; these hooks give most of them real credentials, so that
they get past authentication and reach what they are meant to test:

* the CRM routes (messages and a message's state, chats/read, sessions,
  contacts and their conversations, webhook endpoints and their deliveries,
  media uploads and reads; not a media link's content, whose signature is
  its credential) get
  `Authorization: Bearer <the test's API key>`;
* /v1/events and POST /v1/meta/webhook get a marker in their signature
  header, and a `requests` auth callable replaces the marker, once the body
  is serialized, by the HMAC-SHA256 of the exact bytes sent: a request
  that names its gateway (X-Blazz-Gateway, set to the registered one) is
  signed as our gateways sign (ARCHITECTURE.md §9.2: X-Blazz-Timestamp now,
  X-Blazz-Key-Id, the HMAC of "<timestamp>.<body>" under a key derived from
  the gateway's), one that does not as the seeds' notifier signs (the HMAC
  of the body under the key; the test makes the gateway ingest's unnamed
  one); a Meta notification under the app secret, "sha256=" first;
* Meta's handshake gets the real hub.verify_token;
* the test's own API key is never revoked (a key id the stateful phase
  took from GET /v1/api-keys becomes one of no key);
* an endpoint's deliveries, change, replay and secret rotation name, every other case, the
  test's endpoint (BLAZZ_OPENAPI_ENDPOINT, with deliveries) rather than a
  made-up id, which would only ever be 404;
* a group's conversation names, every other case, the test's group
  (BLAZZ_OPENAPI_GROUP, with a message), for the same reason;
* among the sends Schemathesis means to be valid, every SEND_CASE_EVERY-th
  reuses the idempotency key of a message the test stored with another
  request (BLAZZ_OPENAPI_REUSED_KEY: 409 idempotency_key_reused), and the
  one after it sends the example contact an image by the uuid of another
  workspace's media (BLAZZ_OPENAPI_FOREIGN_MEDIA: 404 unknown_media), cases
  random bodies reach too rarely;
* POST /v1/gateway/media gets the gateway's headers, the session it serves
  (BLAZZ_OPENAPI_SESSION) and the marker; the auth callable sets
  X-Blazz-Content-SHA256 to the body's digest and signs the statement
  ingest checks (ARCHITECTURE.md §16.4); GET /v1/gateway/media/{uuid} the
  same, its statement the read's (the session and the path's uuid).

Every UNSIGNED_EVERY-th case keeps the credentials Schemathesis generated
(random: 401 or 403), and Schemathesis' own auth probes (`ignored_auth`)
send requests without credentials or with wrong ones: a signature is only
computed where the marker is, so a probe is never signed.

after_call appends one line per request to $BLAZZ_OPENAPI_CALLS_LOG:
"<method> <path> <status> <auth|noauth> <error>" (the path as the document
writes it, {session_id} and all), "auth" when the request carried
the right credentials (checked on the bytes sent, not on what a hook
meant), so the test can count how many cases passed authentication; the
error is an answer's `error` member, "-" without one, so that the test
sees which refusals were reached.

The secrets come from the environment the test sets (never argv):
BLAZZ_OPENAPI_API_KEY, BLAZZ_OPENAPI_GATEWAY, BLAZZ_OPENAPI_GATEWAY_KEY,
BLAZZ_OPENAPI_META_SECRET, BLAZZ_OPENAPI_VERIFY_TOKEN (and what the test
made: BLAZZ_OPENAPI_SESSION, BLAZZ_OPENAPI_ENDPOINT, BLAZZ_OPENAPI_GROUP,
BLAZZ_OPENAPI_REUSED_KEY, BLAZZ_OPENAPI_FOREIGN_MEDIA, and the example
contact's phone, BLAZZ_OPENAPI_PHONE).
"""

import hashlib
import hmac
import itertools
import json
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests.auth
import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

API_KEY = os.environ["BLAZZ_OPENAPI_API_KEY"]
GATEWAY = os.environ["BLAZZ_OPENAPI_GATEWAY"]
GATEWAY_KEY = os.environ["BLAZZ_OPENAPI_GATEWAY_KEY"].encode()
META_SECRET = os.environ["BLAZZ_OPENAPI_META_SECRET"].encode()
VERIFY_TOKEN = os.environ["BLAZZ_OPENAPI_VERIFY_TOKEN"]
SESSION = os.environ["BLAZZ_OPENAPI_SESSION"]
ENDPOINT = os.environ["BLAZZ_OPENAPI_ENDPOINT"]
GROUP = os.environ["BLAZZ_OPENAPI_GROUP"]
REUSED_KEY = os.environ["BLAZZ_OPENAPI_REUSED_KEY"]
FOREIGN_MEDIA = os.environ["BLAZZ_OPENAPI_FOREIGN_MEDIA"]
PHONE = os.environ["BLAZZ_OPENAPI_PHONE"]
GROUP_PATH = "/v1/groups/{group_id}/messages"
SEND_CASE_EVERY = 5
API_KEY_PATH = "/v1/api-keys/{key_id}"
API_KEY_ID = API_KEY[len("bzk_"):len("bzk_") + 16]
ENDPOINT_PATHS = ("/v1/webhook-endpoints/{endpoint_id}",
                  "/v1/webhook-endpoints/{endpoint_id}/deliveries",
                  "/v1/webhook-endpoints/{endpoint_id}/replay",
                  "/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
GATEWAY_MEDIA = "/v1/gateway/media"
CONTENT_SHA = "X-Blazz-Content-SHA256"
CALLS_LOG = os.environ["BLAZZ_OPENAPI_CALLS_LOG"]

GATEWAY_SIGNATURE = "X-WhatsApp-Signature"
META_SIGNATURE = "X-Hub-Signature-256"
TIMESTAMP = "X-Blazz-Timestamp"
KEY_ID = "X-Blazz-Key-Id"
TIMESTAMPED_KEY = hmac.new(GATEWAY_KEY, b"blazz-gateway-timestamped-v1", hashlib.sha256).digest()
GATEWAY_KEY_ID = hmac.new(GATEWAY_KEY, b"blazz-gateway-key-id", hashlib.sha256).hexdigest()[:16]
MARKER = "blazz-openapi-sign-me"
UNSIGNED_EVERY = 8

_cases = itertools.count(1)
_endpoint_cases = itertools.count(1)
_group_cases = itertools.count(1)
_send_cases = itertools.count(1)
_log_lock = threading.Lock()


def _hex_hmac(key, *parts):
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.hexdigest()


def _body_bytes(request):
    body = request.body
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body


def _gateway_media_path(path):
    """Whether path is the gateways' media upload or read (signed statements)."""
    return path == GATEWAY_MEDIA or path.startswith(GATEWAY_MEDIA + "/")


def _media_statement(request):
    """What a gateway's media upload or read signs instead of its body."""
    url = urlsplit(request.url)
    session = parse_qs(url.query).get("session", [""])[0]
    if url.path != GATEWAY_MEDIA:
        media_uuid = url.path[len(GATEWAY_MEDIA) + 1:]
        return b"blazz-gateway-media-read-v1\n" + session.encode() + b"\n" + media_uuid.encode()
    sha = request.headers.get(CONTENT_SHA, "")
    return b"blazz-gateway-media-v1\n" + session.encode() + b"\n" + sha.encode()


def _gateway_signature(request):
    timestamp = request.headers.get(TIMESTAMP)
    body = _body_bytes(request)
    if _gateway_media_path(urlsplit(request.url).path):
        body = _media_statement(request)
    if timestamp is not None:
        return _hex_hmac(TIMESTAMPED_KEY, timestamp.encode(), b".", body)
    return _hex_hmac(GATEWAY_KEY, body)


def _meta_signature(request):
    return "sha256=" + _hex_hmac(META_SECRET, _body_bytes(request))


class SignMarkedRequests(requests.auth.AuthBase):
    """Replace the marker in a signature header by the signature of the body sent."""

    def __call__(self, request):
        if request.headers.get(GATEWAY_SIGNATURE) == MARKER and \
                urlsplit(request.url).path == GATEWAY_MEDIA:
            request.headers[CONTENT_SHA] = hashlib.sha256(_body_bytes(request)).hexdigest()
        if request.headers.get(GATEWAY_SIGNATURE) == MARKER:
            request.headers[GATEWAY_SIGNATURE] = _gateway_signature(request)
        if request.headers.get(META_SIGNATURE) == MARKER:
            request.headers[META_SIGNATURE] = _meta_signature(request)
        return request


def _meant_invalid(case, location):
    """Whether Schemathesis generated this case's parameters in location to break the document."""
    meta = getattr(case, "meta", None)
    info = meta.components.get(location) if meta else None
    return info is not None and info.mode == GenerationMode.NEGATIVE


def _headers_meant_invalid(case):
    """Whether Schemathesis generated this case's headers to break the document."""
    return _meant_invalid(case, ParameterLocation.HEADER)


@schemathesis.auth(refresh_interval=None)
class BlazzCredentials:
    """The test's real credentials, for all but every UNSIGNED_EVERY-th case."""

    def get(self, case, context):
        if next(_cases) % UNSIGNED_EVERY == 0:
            return None
        return True

    def set(self, case, data, context):
        operation = context.operation
        if _crm_path(operation.path):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {API_KEY}"}
            if operation.path == API_KEY_PATH and \
                    (case.path_parameters or {}).get("key_id") == API_KEY_ID:
                case.path_parameters = {**case.path_parameters, "key_id": "z" * 16}
            # a DELETE keeps its made-up id: the test's endpoint, deleted,
            # would leave the other operations only 404 to answer
            if operation.path in ENDPOINT_PATHS and operation.method.upper() != "DELETE" and \
                    next(_endpoint_cases) % 2 and not _meant_invalid(case, ParameterLocation.PATH):
                case.path_parameters = {**(case.path_parameters or {}), "endpoint_id": ENDPOINT}
            if operation.path == GROUP_PATH and next(_group_cases) % 2 and \
                    not _meant_invalid(case, ParameterLocation.PATH):
                case.path_parameters = {**(case.path_parameters or {}), "group_id": GROUP}
            if operation.path == "/v1/messages" and operation.method.upper() == "POST":
                _send_known_refusals(case)
        elif operation.path == "/v1/events":
            headers = {**(case.headers or {}), GATEWAY_SIGNATURE: MARKER}
            # Headers that break the document on purpose stay as they are:
            # ingest's refusal of them is what the case checks.
            if not _headers_meant_invalid(case):
                if "X-Blazz-Gateway" in headers:
                    headers["X-Blazz-Gateway"] = GATEWAY
                    headers[TIMESTAMP] = str(int(time.time()))
                    headers[KEY_ID] = GATEWAY_KEY_ID
                else:
                    headers.pop(TIMESTAMP, None)
                    headers.pop(KEY_ID, None)
            case.headers = headers
        elif _gateway_media_path(operation.path):
            headers = {**(case.headers or {}), GATEWAY_SIGNATURE: MARKER}
            if not _headers_meant_invalid(case):
                headers["X-Blazz-Gateway"] = GATEWAY
                headers[TIMESTAMP] = str(int(time.time()))
                headers[KEY_ID] = GATEWAY_KEY_ID
            case.headers = headers
            case.query = {**(case.query or {}), "session": SESSION}
        elif operation.path == "/v1/meta/webhook" and operation.method.upper() == "POST":
            case.headers = {**(case.headers or {}), META_SIGNATURE: MARKER}
        elif operation.path == "/v1/meta/webhook":
            case.query = {**(case.query or {}), "hub.verify_token": VERIFY_TOKEN}


def _send_known_refusals(case):
    """Make some valid sends the ones that reach a refusal only state can."""
    if not isinstance(case.body, dict) or _meant_invalid(case, ParameterLocation.BODY):
        return
    turn = next(_send_cases) % SEND_CASE_EVERY
    if turn not in (0, 1):
        return
    # the key in the body alone: a header's would be a second one
    case.headers = {k: v for k, v in (case.headers or {}).items()
                    if k.lower() != "idempotency-key"}
    if turn == 0:
        case.body = {**case.body, "idempotency_key": REUSED_KEY}
    else:
        case.body = {"idempotency_key": case.body.get("idempotency_key", "openapi-media"),
                     "contact_phone": PHONE, "message_type": "image",
                     "media": {"media_id": FOREIGN_MEDIA, "caption": "another's"}}


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = SignMarkedRequests()


def _crm_path(path):
    """Whether path (a template or a request's) is the CRM API's, under its API keys."""
    if path.startswith("/v1/media"):
        return not path.endswith("/content")
    return path in ("/v1/messages", "/v1/chats/read") or path.startswith("/v1/messages/") or \
        path == "/v1/sessions" or path.startswith("/v1/sessions/") or \
        path == "/v1/contacts" or path.startswith("/v1/contacts/") or \
        path == "/v1/conversations" or path.startswith("/v1/groups/") or \
        path == "/v1/webhook-endpoints" or path.startswith("/v1/webhook-endpoints/") or \
        path == "/v1/api-keys" or path.startswith("/v1/api-keys/")


def _authenticated(request):
    path = urlsplit(request.url).path
    if _crm_path(path):
        return request.headers.get("Authorization") == f"Bearer {API_KEY}"
    if path == "/v1/events" or _gateway_media_path(path):
        given = request.headers.get(GATEWAY_SIGNATURE, "")
        return hmac.compare_digest(given.lower(), _gateway_signature(request))
    if path == "/v1/meta/webhook" and request.method == "POST":
        return hmac.compare_digest(request.headers.get(META_SIGNATURE, ""), _meta_signature(request))
    if path == "/v1/meta/webhook":
        tokens = parse_qs(urlsplit(request.url).query).get("hub.verify_token", [])
        return tokens == [VERIFY_TOKEN]
    return True


def _error_of(response):
    """An answer's `error` member, "-" when it has none (or is no JSON object).

    Parsed here, not with response.json(): that caches what it parsed as the
    answer's deserialized body, which Schemathesis' checks then take for the
    body of any content type (a text/plain challenge of digits became a
    number)."""
    try:
        error = json.loads(response.text).get("error")
    except (ValueError, AttributeError):
        return "-"
    return error if isinstance(error, str) and error and error.isprintable() and \
        " " not in error else "-"


@schemathesis.hook
def after_call(context, case, response):
    request = response.request
    # The operation's path as the document writes it, so that the test
    # counts /v1/sessions/{session_id}/restart once whatever the id was.
    line = "%s %s %d %s %s\n" % (
        request.method,
        case.operation.path,
        response.status_code,
        "auth" if _authenticated(request) else "noauth",
        _error_of(response),
    )
    with _log_lock:
        with open(CALLS_LOG, "a", encoding="utf-8") as log:
            log.write(line)
