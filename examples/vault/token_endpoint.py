#!/usr/bin/env python3
"""A toy OAuth 2.0 token endpoint for examples/vault (standard library only, 127.0.0.1).

POST /token with grant_type=client_credentials and HTTP Basic client authentication: checks the
client id and secret against CLIENT_ID and the file CLIENT_SECRET_FILE, answers a random bearer
token valid for EXPIRES_IN seconds, and logs one line per request (never the secret or token).
"""
import base64
import json
import os
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

CLIENT_ID = os.environ.get("CLIENT_ID", "switchboard")
with open(os.environ["CLIENT_SECRET_FILE"], encoding="utf-8") as f:
    CLIENT_SECRET = f.read().rstrip("\r\n")
EXPIRES_IN = int(os.environ.get("EXPIRES_IN", "3600"))
PORT = int(os.environ.get("PORT", "8093"))
issued = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global issued
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        form = dict(urllib.parse.parse_qsl(body))
        auth = self.headers.get("authorization", "")
        client = None
        if auth.startswith("Basic "):
            ident, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            client = (urllib.parse.unquote_plus(ident), urllib.parse.unquote_plus(secret))
        if self.path != "/token" or form.get("grant_type") != "client_credentials":
            return self.answer(400, {"error": "unsupported_grant_type"})
        if client != (CLIENT_ID, CLIENT_SECRET):
            print("token endpoint: refused a client", file=sys.stderr, flush=True)
            return self.answer(401, {"error": "invalid_client"})
        issued += 1
        print(f"token endpoint: issued token #{issued} to {client[0]} "
              f"(scope {form.get('scope')!r}, audience {form.get('audience')!r})",
              file=sys.stderr, flush=True)
        self.answer(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                          "expires_in": EXPIRES_IN})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
