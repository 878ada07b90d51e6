#!/usr/bin/env python3
"""tests/lib/s3-drop-proxy.py - an HTTP proxy in front of the test S3 server
that loses one answer: the first request whose method and query match is
sent to the server, which carries it out, but the client's connection is
then closed without the answer. That is what a network failure at the
worst moment looks like to the client.

    s3-drop-proxy.py PORTFILE LOGFILE UPSTREAM_PORT METHOD QUERY_SUBSTRING [MODE]

Writes its port to PORTFILE and one line per request to LOGFILE
("METHOD PATH?QUERY STATUS" or "... dropped").

MODE "nosuchupload": the retry of the dropped request is answered by the
proxy as AWS S3 may answer a CompleteMultipartUpload whose upload an earlier
attempt completed: 404 NoSuchUpload (versitygw itself answers 200).
MODE "unsent-nosuchupload": the same, but the dropped request never reached
the server, so nothing was completed (the client must not believe it was).
MODE "notimplemented": nothing is dropped; every matching request is
answered 501 NotImplemented, as by a server without that operation (some
S3-compatible servers lack DeleteObjects).
"""
import http.client
import http.server
import sys

portfile, logfile, upstream_port, drop_method, drop_query = sys.argv[1:6]
mode = sys.argv[6] if len(sys.argv) > 6 else ""
play_nosuchupload = mode in ("nosuchupload", "unsent-nosuchupload")
dropped = False
answered = False
NOT_IMPLEMENTED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
                   b'<Message>A header you provided implies functionality that is not '
                   b'implemented.</Message></Error>')
NO_SUCH_UPLOAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code>'
                  b'<Message>The specified upload does not exist.</Message></Error>')


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def note(self, what):
        with open(logfile, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, what))

    def forward(self):
        global dropped, answered
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        matches = self.command == drop_method and drop_query in self.path
        if matches and mode == "notimplemented":
            self.note("501 NotImplemented (played)")
            self.send_response_only(501, "Not Implemented")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(NOT_IMPLEMENTED)))
            self.end_headers()
            self.wfile.write(NOT_IMPLEMENTED)
            return
        if dropped and matches and play_nosuchupload and not answered:
            answered = True
            self.note("404 NoSuchUpload (played)")
            self.send_response_only(404, "Not Found")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(NO_SUCH_UPLOAD)))
            self.end_headers()
            self.wfile.write(NO_SUCH_UPLOAD)
            return
        if not dropped and matches and mode == "unsent-nosuchupload":
            dropped = True
            self.note("unsent dropped")
            self.close_connection = True
            return
        upstream = http.client.HTTPConnection("127.0.0.1", int(upstream_port), timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        resp = upstream.getresponse()
        data = resp.read()
        upstream.close()
        if not dropped and matches:
            dropped = True
            self.note("%d dropped" % resp.status)
            self.close_connection = True
            return
        self.note("%d" % resp.status)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        # A HEAD answer tells the object's length, not its own.
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(portfile, "w") as f:
    f.write("%d\n" % server.server_address[1])
server.serve_forever()
