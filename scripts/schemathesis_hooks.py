"""schemathesis hooks for scripts/schemathesis: every generated request is
signed in as a real buyer would be.

Tokens are minted here, per request, with the keys scripts/schemathesis gave
the services (URR_USER_JWT_SECRET, URR_ENTRY_TOKEN_KEY) and the Event they
serve (URR_EVENT_ID): an HS256 user JWT (`sub`, `exp`) in `Authorization`,
and the entry token the queue would hand out at admission (`typ` urr-entry,
bound to the same user and event) in `urr-entry-token`. So the fuzzer
reaches the handlers behind the sign-in instead of stopping at 401, and a
401 or 403 it gets is the service's verdict on the request, not on a stale
token. One buyer per run (schemathesis keeps the token for 5 minutes, it is
valid for 10), so a hold made by one call can be read or released by the
next, as the spec's links say.

The standard library signs (HMAC-SHA256): no JWT package to install.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import schemathesis


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(secret: str, claims: dict) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def mint(user: str) -> dict:
    """The headers of a signed-in, admitted buyer `user`."""
    now = int(time.time())
    headers = {
        "Authorization": "Bearer "
        + _jwt(os.environ["URR_USER_JWT_SECRET"], {"sub": user, "exp": now + 600})
    }
    entry_key = os.environ.get("URR_ENTRY_TOKEN_KEY")
    if entry_key:
        headers["urr-entry-token"] = _jwt(
            entry_key,
            {
                "sub": user,
                "evt": os.environ["URR_EVENT_ID"],
                "iat": now,
                "exp": now + 600,
                "jti": str(uuid.uuid4()),
                "typ": "urr-entry",
            },
        )
    return headers


# scripts/schemathesis names the buyer, so the hold it made for the payment
# API's cases is this buyer's.
BUYER = os.environ.get("URR_SCHEMATHESIS_BUYER") or f"fuzz-{uuid.uuid4().hex[:12]}"


@schemathesis.auth()
class Buyer:
    """The run's buyer."""

    def get(self, case, context):
        return mint(BUYER)

    def set(self, case, data, context):
        # scripts/schemathesis runs with security parameters not generated
        # (random bearer tokens only ever reach the 401), so these are the
        # request's credentials.
        case.headers = case.headers or {}
        case.headers.update(data)


@schemathesis.hook
def after_call(context, case, response):
    """One line per request sent (`<status> <METHOD> <path template>`), for
    the figures scripts/schemathesis prints."""
    log = os.environ.get("URR_SCHEMATHESIS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{response.status_code} {case.operation.method.upper()} {case.operation.path}\n")
