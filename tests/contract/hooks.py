"""Schemathesis hooks for walletd's contract run (tests/contract/run.sh).

Credentials the OpenAPI security schemes name come from schemathesis.toml.
What no schema and no static header can carry is done here, on the prepared
request, just before it is sent:

* `header.created` must be within WALLETD_SIGNATURE_WINDOW of the server's
  clock: a generated integer is replaced by the current time (other types are
  left alone, to test their refusal).
* Most string `header.app_handle`s are pointed at the app registered for the
  run (the rest stay as generated, to test unknown apps).
* String `header.reference`s are made unique (an app accepts each once).
* The `authsignature` header, when the case carries one at all, becomes a
  real signature over the exact body bytes sent, made with that app's key by
  eth-account. A case generated without the header still tests the refusal.

So most generated Sila requests get past the envelope and the signature
check and reach the handlers. Report bodies show the request as generated,
before these edits.
"""

import json
import os
import random
import time
import uuid

import requests
import schemathesis
from eth_account import Account
from eth_utils import keccak

APP_HANDLE = os.environ["CONTRACT_SILA_APP_HANDLE"]
APP_KEY = Account.from_key(os.environ["CONTRACT_SILA_APP_KEY"])


def _fresh(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    header = doc.get("header") if isinstance(doc, dict) else None
    if not isinstance(header, dict):
        return body
    if isinstance(header.get("created"), int) and not isinstance(header.get("created"), bool):
        header["created"] = int(time.time())
    if isinstance(header.get("app_handle"), str) and random.random() < 0.8:
        header["app_handle"] = APP_HANDLE
    if isinstance(header.get("reference"), str):
        # An app accepts a reference once: a repeated one only tests replay.
        header["reference"] = uuid.uuid4().hex
    return json.dumps(doc).encode()


class SilaRequest(requests.auth.AuthBase):
    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        if body:
            body = _fresh(body)
            r.body = body
            r.headers["Content-Length"] = str(len(body))
        if "authsignature" in r.headers:
            signed = APP_KEY.unsafe_sign_hash(keccak(body))
            r.headers["authsignature"] = signed.signature.hex().removeprefix("0x")
        return r


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.operation.path.startswith("/0.2/"):
        kwargs["auth"] = SilaRequest()
