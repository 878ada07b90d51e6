#!/bin/bash
# tests/integration/s3-settings.sh - how the s3 storage is configured, each
# checked against versitygw, which verifies every signature: credentials
# from the environment, from a shared credentials file with a profile, and
# from the instance metadata service (IMDSv2, a loopback stand-in); clear
# errors for a wrong secret, an unknown key, a missing bucket and missing
# credentials; HTTPS with a CA file, without one, and with verification
# turned off by name; virtual-hosted and path-style addressing.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

IMDS_PID=
trap '[ -n "$IMDS_PID" ] && kill "$IMDS_PID" 2>/dev/null; s3_stop; _cleanup' EXIT

if ! s3_start "$TMP/s3"; then
	ok 1 "versitygw starts"
	done_testing
fi
ok 0 "versitygw starts on $S3_ENDPOINT"
REPO=s3://$S3_BUCKET/settings
printf 'cairn s3 settings test\n' >"$TMP/obj"

check "environment credentials: a put" cairn st put probe "$TMP/obj"

run cairn_norepo help config
like "$OUT" "environment: .*WALG_S3_PREFIX WALE_S3_PREFIX" "help config lists WAL-G's prefix names"
like "$OUT" "environment: .*AWS_ENDPOINT" "... AWS_ENDPOINT"
like "$OUT" "environment: .*AWS_S3_FORCE_PATH_STYLE" "... AWS_S3_FORCE_PATH_STYLE"
like "$OUT" "environment: .*WALG_S3_CA_CERT_FILE" "... WALG_S3_CA_CERT_FILE"
like "$OUT" "environment: .*WALG_S3_STORAGE_CLASS" "... WALG_S3_STORAGE_CLASS"
like "$OUT" "environment: .*WALG_S3_SSE" "... WALG_S3_SSE"

# ---- wrong credentials: one clear line naming the endpoint and the server's code ----
AWS_SECRET_ACCESS_KEY=not-the-secret-42 expect_fail -c 6 "a wrong secret key: access denied (exit 6)" \
	cairn backup-list
like "$ERR" "127\.0\.0\.1:$S3_PORT" "... the error names the endpoint"
like "$ERR" "SignatureDoesNotMatch" "... and the server's error code"
unlike "$ERR" "not-the-secret-42|$S3_SECRET_KEY" "... and no secret"
AWS_ACCESS_KEY_ID=nobody expect_fail -c 6 "an unknown access key: access denied (exit 6)" \
	cairn backup-list
AWS_SESSION_TOKEN=bogus-token expect_fail -c 6 "a session token is sent and signed (versitygw refuses a bogus one)" \
	cairn backup-list
like "$ERR" "InvalidToken" "... with the server's code"
unlike "$ERR" "bogus-token" "... and without the token"
REPO=s3://no-such-bucket/x expect_fail -c 2 "a missing bucket: a configuration error (exit 2)" \
	cairn dir backup-push "$TMP"
like "$ERR" "NoSuchBucket" "... naming the server's code"
expect_fail -c 2 "an endpoint with a path is refused" env AWS_ENDPOINT="$S3_ENDPOINT/x" \
	CAIRN_REPO="$REPO" "$CAIRN" backup-list
expect_fail -c 2 "a part size under 5 MiB is refused" env CAIRN_S3_PART_SIZE=1M \
	CAIRN_REPO="$REPO" "$CAIRN" backup-list
expect_fail -c 2 "--aws-secret-access-key is refused on the command line" \
	cairn --aws-secret-access-key=x backup-list

# ---- shared credentials file and profiles ----
cat >"$TMP/credentials" <<EOF
[default]
aws_access_key_id = wrong
aws_secret_access_key = wrong

[backup]
aws_access_key_id = $S3_ACCESS_KEY
aws_secret_access_key = $S3_SECRET_KEY
EOF
export CAIRN_REPO=$REPO
nokeys=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY)
check "credentials from a shared credentials file, profile backup" \
	"${nokeys[@]}" AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_PROFILE=backup \
	"$CAIRN" st cat probe
is "$OUT" "cairn s3 settings test" "... read the object"
expect_fail -c 6 "... the [default] profile holds wrong keys (exit 6)" \
	"${nokeys[@]}" AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" "$CAIRN" st cat probe
expect_fail -c 2 "a profile that does not exist (exit 2)" \
	"${nokeys[@]}" AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_PROFILE=nope "$CAIRN" st cat probe
like "$ERR" "AWS profile nope not found in $TMP/credentials" "... names the profile and the file"
mkdir -p "$HOME/.aws"
sed -n '/^\[backup\]/,$p' "$TMP/credentials" | sed 's/^\[backup\]/[default]/' >"$HOME/.aws/credentials"
check "credentials from ~/.aws/credentials [default]" "${nokeys[@]}" "$CAIRN" st cat probe
rm -f "$HOME/.aws/credentials"
expect_fail -c 2 "no credentials anywhere (metadata service disabled): exit 2" \
	"${nokeys[@]}" "$CAIRN" st cat probe
like "$ERR" "no AWS credentials" "... says so"

# ---- instance metadata service (IMDSv2) ----
imds_start() {
	rm -f "$TMP/imds.port" "$TMP/imds.log"
	"$PYTHON" "$CAIRN_SRCDIR/tests/lib/imds.py" "$TMP/imds.port" "$TMP/imds.log" \
		"$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$1" 2>"$TMP/imds.err" &
	IMDS_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$TMP/imds.port" ] && break
		sleep 0.05
	done
	IMDS_ENDPOINT=http://127.0.0.1:$(cat "$TMP/imds.port" 2>/dev/null)
	wait_port "${IMDS_ENDPOINT##*:}" 5
}
imds_stop() {
	kill "$IMDS_PID" 2>/dev/null
	wait "$IMDS_PID" 2>/dev/null
	IMDS_PID=
}
imds=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_EC2_METADATA_DISABLED)
if imds_start 3600; then
	check "credentials from the instance metadata service" \
		"${imds[@]}" AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS_ENDPOINT" "$CAIRN" st cat probe
	is "$OUT" "cairn s3 settings test" "... read the object"
	is "$(cat "$TMP/imds.log")" "PUT /latest/api/token token=no
GET /latest/meta-data/iam/security-credentials/ token=yes
GET /latest/meta-data/iam/security-credentials/cairn-test-role token=yes" \
		"... asked IMDSv2-style: a session token first, then the role, then its keys"
	imds_stop
else
	ok 1 "the metadata stand-in starts"
fi
if imds_start 60; then
	check "credentials that expire within 5 minutes are renewed before a request" \
		"${imds[@]}" AWS_EC2_METADATA_SERVICE_ENDPOINT="$IMDS_ENDPOINT" "$CAIRN" st cat probe
	cmp_ok "$(grep -c 'cairn-test-role' "$TMP/imds.log")" -ge 2 "... the keys were fetched again"
	imds_stop
else
	ok 1 "the metadata stand-in starts"
fi
expect_fail -c 2 "a metadata service that does not answer: exit 2" \
	"${imds[@]}" AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$(free_port)" "$CAIRN" st cat probe
like "$ERR" "instance metadata service gave none" "... says why"

# ---- addressing: virtual-hosted style ----
# *.localhost resolves to 127.0.0.1, so bucket.s3.localhost reaches versitygw,
# which maps the host name to the bucket with --virtual-domain.
s3_stop
S3_ARGS=(--virtual-domain s3.localhost)
if _s3_launch; then
	check "virtual-hosted style (bucket.s3.localhost)" env -u AWS_S3_FORCE_PATH_STYLE \
		AWS_ENDPOINT="http://s3.localhost:$S3_PORT" CAIRN_REPO="$REPO" "$CAIRN" -vv st cat probe
	like "$ERR" "virtual-hosted style" "... chosen because the path style was not forced"
	is "$OUT" "cairn s3 settings test" "... read the object"
else
	ok 1 "versitygw restarts with --virtual-domain"
fi

# ---- HTTPS ----
s3_stop
mkdir -p "$TMP/tls"
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" \
	-days 2 -subj "/CN=cairn-test" -addext "subjectAltName=IP:127.0.0.1" 2>"$TMP/tls/err" &&
	S3_ARGS=(--cert "$TMP/tls/cert.pem" --key "$TMP/tls/key.pem") && _s3_launch; then
	https=(env AWS_ENDPOINT="https://127.0.0.1:$S3_PORT" CAIRN_REPO="$REPO")
	expect_fail -c 1 "https with a certificate nobody vouches for fails" "${https[@]}" \
		"$CAIRN" st cat probe
	like "$ERR" "TLS verification failed" "... saying why"
	like "$ERR" "WALG_S3_CA_CERT_FILE" "... and what to set"
	check "https with WALG_S3_CA_CERT_FILE" "${https[@]}" WALG_S3_CA_CERT_FILE="$TMP/tls/cert.pem" \
		"$CAIRN" st cat probe
	is "$OUT" "cairn s3 settings test" "... read the object"
	check "https with s3-tls-insecure-skip-verify" "${https[@]}" \
		CAIRN_S3_TLS_INSECURE_SKIP_VERIFY=true "$CAIRN" st cat probe
	like "$ERR" "not verified" "... warns that certificates are not verified"
else
	ok 1 "versitygw starts with TLS"
	diag_file "$TMP/tls/err"
fi

done_testing
