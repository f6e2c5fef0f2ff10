#!/usr/bin/env python3
"""A tiny Confluent-compatible schema registry for the registry client's unit
test (test_codec_registry.c). Standard library only.

  POST /subjects/<subject>/versions  {"schema": "..."} -> {"id": N}
       (the same schema text under any subject keeps its id)
  GET  /schemas/ids/<id>             -> {"schema": "..."} or 404 error_code 40403
  GET  /schemas/ids/4242             -> answers after 3 s (for timeouts)
  GET  /stats                        -> {"requests": N}

Options: --auth USER:PASS (basic auth, else 401), --tls (self-signed
certificate for 127.0.0.1 made with the openssl command; its path is printed).
Listens on 127.0.0.1 on a free port and prints "PORT [CAFILE]" on stdout, then
serves until killed (or until stdin closes, so it never outlives its test).
"""
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

auth = None
tls = "--tls" in sys.argv
if "--auth" in sys.argv:
    auth = "Basic " + base64.b64encode(sys.argv[sys.argv.index("--auth") + 1].encode()).decode()

schemas = []  # index + 1 = id
lock = threading.Lock()
requests = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        global requests
        with lock:
            requests += 1
        if auth and self.headers.get("Authorization") != auth:
            self.reply(401, {"error_code": 40101, "message": "Unauthorized"})
            return False
        return True

    def do_POST(self):
        if not self.authorized():
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
            return self.reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        n = int(self.headers.get("Content-Length", "0"))
        try:
            schema = json.loads(self.rfile.read(n))["schema"]
            json.loads(schema)
        except Exception:
            return self.reply(422, {"error_code": 42201, "message": "Invalid schema"})
        with lock:
            if schema not in schemas:
                schemas.append(schema)
            sid = schemas.index(schema) + 1
        self.reply(200, {"id": sid})

    def do_GET(self):
        if not self.authorized():
            return
        if self.path == "/stats":
            return self.reply(200, {"requests": requests})
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            sid = int(parts[2])
            if sid == 4242:
                time.sleep(3)
            with lock:
                if 1 <= sid <= len(schemas):
                    return self.reply(200, {"schema": schemas[sid - 1]})
            return self.reply(404, {"error_code": 40403, "message": "Schema %d not found" % sid})
        self.reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
cafile = ""
if tls:
    d = tempfile.mkdtemp(prefix="tf-registry-tls-")
    cafile = os.path.join(d, "cert.pem")
    key = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cafile], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cafile, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], cafile, flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()  # the test closes our stdin (or dies): stop
