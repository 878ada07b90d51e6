#!/usr/bin/env python3
"""tests/lib/imds.py - a stand-in for the EC2 instance metadata service
(IMDSv2) on a loopback port, handing out the test S3 server's keys as the
credentials of an instance role. No real metadata service can run outside
EC2; the credentials it hands out are checked by the real S3 server.

    imds.py PORTFILE LOGFILE ACCESS_KEY SECRET_KEY EXPIRES_IN_SECONDS

Writes the port it listens on to PORTFILE, one line per request to LOGFILE
("METHOD PATH token=yes|no"), and, like IMDSv2, refuses requests without a
session token obtained by PUT /latest/api/token.
"""
import datetime
import http.server
import secrets
import sys

portfile, logfile, access_key, secret_key, expires_in = sys.argv[1:6]
TOKEN = secrets.token_hex(16)
ROLE = "cairn-test-role"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def note(self):
        has = self.headers.get("X-aws-ec2-metadata-token") == TOKEN
        with open(logfile, "a") as f:
            f.write("%s %s token=%s\n" % (self.command, self.path, "yes" if has else "no"))
        return has

    def do_PUT(self):
        self.note()
        if self.path != "/latest/api/token":
            return self.reply(404, "not found")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "missing ttl")
        self.reply(200, TOKEN)

    def do_GET(self):
        if not self.note():
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.reply(200, ROLE + "\n")
        if self.path == base + ROLE:
            expires = datetime.datetime.utcnow() + datetime.timedelta(seconds=int(expires_in))
            return self.reply(200, """{
  "Code" : "Success",
  "LastUpdated" : "2024-01-01T00:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "%s",
  "SecretAccessKey" : "%s",
  "Token" : "",
  "Expiration" : "%s"
}""" % (access_key, secret_key, expires.strftime("%Y-%m-%dT%H:%M:%SZ")))
        self.reply(404, "not found")


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile, "w") as f:
    f.write("%d\n" % server.server_address[1])
server.serve_forever()
