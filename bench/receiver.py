"""A fast-enough webhook receiver for the events benchmark: answers 200 and
records (webhook-id, payload timestamp, receive time) for every delivery."""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# argv: port, directory, file name. The log is reopened when the benchmark
# moves the directory away between phases.
path = os.path.join(sys.argv[2], sys.argv[3])
lock = threading.Lock()
out = None

def record(line):
    global out
    with lock:
        if out is None or not os.path.exists(path):
            out = open(path, "a", buffering=1)
        out.write(line)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        body = self.rfile.read(n)
        now = time.time()
        try:
            ts = json.loads(body)["timestamp"]
        except Exception:
            ts = ""
        record(f"{self.headers.get('webhook-id')}\t{ts}\t{now}\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
