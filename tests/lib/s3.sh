# shellcheck shell=bash
# tests/lib/s3.sh - versitygw, an S3-compatible server that checks SigV4
# signatures, for the tests of the s3 storage (protocol: tests/lib/common.sh).
#
#   s3_install            libcurl's development files and curl (apt), and a
#                         go install of the pinned versitygw into $CAIRN_TOOLS
#   s3_start DIR [ARGS]   starts it on a free loopback port with buckets in
#                         DIR/data (metadata in DIR/meta: no xattrs needed),
#                         creates the bucket $S3_BUCKET, and exports what
#                         cairn needs in WAL-G's names: AWS_ACCESS_KEY_ID,
#                         AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT,
#                         AWS_S3_FORCE_PATH_STYLE, AWS_REGION; also S3_PORT,
#                         S3_ENDPOINT. ARGS go to versitygw (e.g. --cert).
#                         AWS_EC2_METADATA_DISABLED=true keeps cairn from
#                         ever asking 169.254.169.254 for credentials.
#   s3_stop               stops it (kill by its pid)
#   s3_restart            starts it again on the same port with the same data
#   s3_api METHOD PATH [CURL ARGS]  a request signed by curl (not by cairn),
#                         to check the server's state independently
#   s3_multipart_uploads  prints the keys of unfinished multipart uploads in
#                         $S3_BUCKET, one a line

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S3_VERSITYGW_MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0
S3_BUCKET=cairn-test
S3_ACCESS_KEY=cairntest
S3_SECRET_KEY=cairn-test-secret-0123456789
S3_PID=
S3_ARGS=()

s3_install() {
	# libcurl builds the plugin; curl signs the tests' own checks (--aws-sigv4).
	apt_install libcurl4-openssl-dev curl || return 1
	go_install "$S3_VERSITYGW_MODULE" versitygw
}

_s3_launch() {
	"$CAIRN_TOOLS/bin/versitygw" --access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" \
		--port "127.0.0.1:$S3_PORT" "${S3_ARGS[@]}" \
		posix --sidecar "$S3_DIR/meta" "$S3_DIR/data" >>"$S3_DIR/versitygw.log" 2>&1 &
	S3_PID=$!
	if ! wait_port "$S3_PORT" 30; then
		echo "# versitygw did not start; its log:" >&2
		sed 's/^/#   /' "$S3_DIR/versitygw.log" | tail -n 20 >&2
		return 1
	fi
}

s3_start() {
	S3_DIR=$1
	shift
	S3_ARGS=("$@")
	if [ ! -x "$CAIRN_TOOLS/bin/versitygw" ]; then
		s3_install >"$S3_DIR.install.log" 2>&1 || {
			echo "# cannot install versitygw:" >&2
			tail -n 20 "$S3_DIR.install.log" | sed 's/^/#   /' >&2
			return 1
		}
	fi
	# The posix backend keeps a bucket as a folder of its data directory.
	mkdir -p "$S3_DIR/data/$S3_BUCKET" "$S3_DIR/meta" || return 1
	S3_PORT=$(free_port) || return 1
	_s3_launch || return 1
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export S3_PORT S3_ENDPOINT
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export AWS_ENDPOINT=$S3_ENDPOINT AWS_S3_FORCE_PATH_STYLE=true AWS_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE
}

s3_stop() {
	if [ -n "$S3_PID" ]; then
		kill "$S3_PID" 2>/dev/null
		wait "$S3_PID" 2>/dev/null
		S3_PID=
	fi
	return 0
}

s3_restart() {
	s3_stop
	_s3_launch
}

s3_api() {
	local method=$1 path=$2
	shift 2
	curl -sS -X "$method" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"$@" "http://127.0.0.1:$S3_PORT$path"
}

s3_multipart_uploads() {
	local body
	body=$(s3_api GET "/$S3_BUCKET?uploads=") || return 1
	if [[ $body != *"<ListMultipartUploadsResult"* ]]; then
		echo "ListMultipartUploads failed: ${body:0:300}"
		return 1
	fi
	grep -o '<Key>[^<]*</Key>' <<<"$body" | sed 's/<[^>]*>//g'
	return 0
}
