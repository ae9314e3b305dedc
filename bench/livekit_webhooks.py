#!/usr/bin/env python3
"""Signed LiveKit webhooks for the webhook benchmark (bench/calls.sh).

Writes COUNT `participant_joined` events of an agent, each in a room of its
own (`<prefix>_wh-<run>-<i>`), one per line as `<Authorization>\\t<body>`,
signed as LiveKit signs them (HS256 JWT with the API key as issuer and the
body's SHA-256, standard base64). Tokens live 10 minutes.

usage: livekit_webhooks.py API_KEY API_SECRET ROOM_PREFIX RUN COUNT OUT
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(key: str, secret: str, body: bytes, now: int) -> str:
    claims = {
        "iss": key, "nbf": now, "iat": now, "exp": now + 600,
        "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
    }
    head = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64url(mac)


def main() -> None:
    key, secret, prefix, run, count, out = sys.argv[1:7]
    now = int(time.time())
    with open(out, "w") as f:
        for i in range(int(count)):
            room = f"{prefix}_wh-{run}-{i}"
            event = {
                "event": "participant_joined", "id": f"EV_{run}_{i}", "createdAt": str(now),
                "room": {"sid": f"RM_{run}_{i}", "name": room, "creationTime": str(now - 1)},
                "participant": {"sid": f"PA_{run}_{i}", "identity": "agent", "kind": "AGENT",
                                "state": "ACTIVE"},
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            f.write(sign(key, secret, body, now) + "\t" + body.decode() + "\n")


if __name__ == "__main__":
    main()
