#!/bin/bash
# tests/integration/s3-faults.sh - the S3 server goes away in the middle of a
# multipart upload of a backup.
#
#  1. It comes back within the retry budget: the backup completes and
#     restores to the same tree.
#  2. It stays away longer than the budget: the backup fails with a clear
#     error, is not listed, leaves no multipart upload behind (the abort
#     retries until the server is back), and the next backup works.
#
# The steps are ordered by what cairn logs, not by timing: cairn is paused
# (SIGSTOP) as soon as it says a multipart upload started, the server is
# stopped, cairn resumes, and the server starts again only once cairn has
# logged a retry (case 1) or given a part up (case 2).
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

PUSH_PID=
trap '[ -n "$PUSH_PID" ] && kill -CONT "$PUSH_PID" 2>/dev/null && kill -9 "$PUSH_PID" 2>/dev/null; s3_stop; _cleanup' EXIT

if ! s3_start "$TMP/s3"; then
	ok 1 "versitygw starts"
	done_testing
fi
ok 0 "versitygw starts on $S3_ENDPOINT"
REPO=s3://$S3_BUCKET/faults
export CAIRN_S3_PART_SIZE=5M CAIRN_UPLOAD_CONCURRENCY=2

# wait_log ERE FILE SECONDS: waits until a line of FILE matches (or cairn ended).
wait_log() {
	local i
	for ((i = 0; i < $3 * 50; i++)); do
		grep -Eq -- "$1" "$2" 2>/dev/null && return 0
		[ -n "$PUSH_PID" ] && ! kill -0 "$PUSH_PID" 2>/dev/null && break
		sleep 0.02
	done
	grep -Eq -- "$1" "$2" 2>/dev/null
}

# push_start SRC: backup-push in the background, debug log in $TMP/push.err.
push_start() {
	rm -f "$TMP/push.out" "$TMP/push.err" # the job's redirections come later
	CAIRN_REPO=$REPO "$CAIRN" -vv dir backup-push "$1" >"$TMP/push.out" 2>"$TMP/push.err" &
	PUSH_PID=$!
}

# push_wait SECONDS: sets PUSH_RC (124 when it had to be killed).
push_wait() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$PUSH_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PUSH_PID" 2>/dev/null; then
		kill -9 "$PUSH_PID"
		wait "$PUSH_PID"
		PUSH_RC=124
	else
		wait "$PUSH_PID"
		PUSH_RC=$?
	fi
	PUSH_PID=
}

# interrupt_server: pauses cairn at its first multipart upload, stops the server, resumes cairn.
interrupt_server() {
	wait_log "multipart upload of .* started" "$TMP/push.err" 60
	if ! ok $? "$1: a multipart upload started"; then
		diag_file "$TMP/push.err"
		return 1
	fi
	kill -STOP "$PUSH_PID"
	s3_stop
	kill -CONT "$PUSH_PID"
}

# ---- 1. back within the retry budget ----
mkdir -p "$TMP/src1"
rand_file "$TMP/src1/data.bin" $((96 * 1048576)) 11
printf 'small file\n' >"$TMP/src1/small.txt"
tree_digest "$TMP/src1" >"$TMP/src1.digest"
export CAIRN_S3_MAX_RETRIES=8 CAIRN_S3_RETRY_BASE_MS=200 CAIRN_S3_RETRY_MAX_MS=2000
push_start "$TMP/src1"
if interrupt_server "short outage"; then
	wait_log "retry [0-9]+ of [0-9]+" "$TMP/push.err" 60
	ok $? "short outage: cairn retries while the server is down"
	s3_restart
	ok $? "short outage: the server starts again"
fi
push_wait 240
is "$PUSH_RC" 0 "short outage: the backup completes" || diag_file "$TMP/push.err"
grep -q "dir-" "$TMP/push.out"
ok $? "short outage: the backup is named"
NAME1=$(cat "$TMP/push.out")
run backup_names
is "$OUT" "$NAME1" "short outage: the backup is listed"
fetch_ok "short outage: the backup restores" LATEST "$TMP/dst1"
same_tree "$TMP/src1.digest" "$TMP/dst1" "short outage: the restored tree is the original"
run s3_multipart_uploads
is "$OUT" "" "short outage: no multipart upload is left"

# ---- 3. the answer to CompleteMultipartUpload is lost ----
# (before 2, whose outage settings would shorten the retries)
# lost_answer LABEL [nosuchupload]: a 3-part put through a proxy that drops
# the answer to the first CompleteMultipartUpload (see s3-drop-proxy.py).
lost_answer() {
	local label=$1 port
	rm -f "$TMP/proxy.port" "$TMP/proxy.log"
	"$PYTHON" "$CAIRN_SRCDIR/tests/lib/s3-drop-proxy.py" "$TMP/proxy.port" "$TMP/proxy.log" \
		"$S3_PORT" POST "uploadId=" "${2:-}" 2>"$TMP/proxy.err" &
	PROXY_PID=$!
	BG_PIDS+=("$PROXY_PID")
	for _ in $(seq 1 100); do
		[ -s "$TMP/proxy.port" ] && break
		sleep 0.05
	done
	port=$(cat "$TMP/proxy.port" 2>/dev/null)
	if ! wait_port "${port:-0}" 10; then
		ok 1 "$label: the answer-dropping proxy starts"
		diag_file "$TMP/proxy.err"
		return 1
	fi
	run env AWS_ENDPOINT="http://127.0.0.1:$port" CAIRN_REPO="$REPO" \
		"$CAIRN" -v st put "lost/$label" "$TMP/lost.bin"
	is "$RC" 0 "$label: the put of a 3-part object succeeds" || _show_result
	PUT_ERR=$ERR
	grep -q "POST /$S3_BUCKET/faults/lost/$label?uploadId=.* dropped" "$TMP/proxy.log"
	ok $? "$label: the answer of CompleteMultipartUpload was lost"
	grep -c "POST /$S3_BUCKET/faults/lost/$label?uploadId=" "$TMP/proxy.log" >"$TMP/posts"
	is "$(cat "$TMP/posts")" 2 "$label: cairn sent CompleteMultipartUpload again"
	run cairn st cat "lost/$label"
	ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$TMP/lost.bin"; echo $?)" "$label: the object is complete"
	kill "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	bg_forget "$PROXY_PID"
	return 0
}
rand_file "$TMP/lost.bin" $((12 * 1048576 + 7)) 33
lost_answer versitygw-answers-200
if lost_answer aws-answers-nosuchupload nosuchupload; then
	grep -q "404 NoSuchUpload" "$TMP/proxy.log"
	ok $? "nosuchupload: the retry was answered NoSuchUpload"
	like "$PUT_ERR" "completed by an earlier attempt whose answer was lost" \
		"nosuchupload: cairn found the object complete with HEAD and counted it as done"
fi
# The same answers when the first attempt never reached the server: the HEAD
# finds no object, so the put fails (and aborts its upload).
rm -f "$TMP/proxy.port" "$TMP/proxy.log"
"$PYTHON" "$CAIRN_SRCDIR/tests/lib/s3-drop-proxy.py" "$TMP/proxy.port" "$TMP/proxy.log" \
	"$S3_PORT" POST "uploadId=" unsent-nosuchupload 2>"$TMP/proxy.err" &
PROXY_PID=$!
BG_PIDS+=("$PROXY_PID")
for _ in $(seq 1 100); do
	[ -s "$TMP/proxy.port" ] && break
	sleep 0.05
done
if wait_port "$(cat "$TMP/proxy.port" 2>/dev/null || echo 0)" 10; then
	expect_fail "unsent: a NoSuchUpload for an upload that was never completed fails the put" \
		env AWS_ENDPOINT="http://127.0.0.1:$(cat "$TMP/proxy.port")" CAIRN_REPO="$REPO" \
		"$CAIRN" -q st put lost/unsent "$TMP/lost.bin"
	like "$ERR" "NoSuchUpload" "unsent: ... naming the server's code"
	expect_fail -c 3 "unsent: no object appeared" cairn st cat lost/unsent
	run s3_multipart_uploads
	is "$OUT" "" "unsent: the upload was aborted"
else
	ok 1 "the answer-dropping proxy starts"
fi
kill "$PROXY_PID" 2>/dev/null

# ---- 2. away longer than the budget ----
mkdir -p "$TMP/src2"
rand_file "$TMP/src2/data.bin" $((96 * 1048576)) 22
export CAIRN_S3_MAX_RETRIES=2 CAIRN_S3_RETRY_BASE_MS=100 CAIRN_S3_RETRY_MAX_MS=200
push_start "$TMP/src2"
if interrupt_server "long outage"; then
	wait_log "s3: part [0-9]+ of .* failed" "$TMP/push.err" 60
	ok $? "long outage: a part upload gives up when its retries are spent"
	s3_restart
	ok $? "long outage: the server starts again (cairn is aborting the upload)"
fi
push_wait 240
isnt "$PUSH_RC" 0 "long outage: the backup fails"
last=$(grep -v ': \(debug\|warning\|info\): ' "$TMP/push.err" | tail -n 2)
like "$last" "^cairn: cannot write packs/.*127\.0\.0\.1:$S3_PORT" \
	"long outage: one clear error naming the object and the endpoint"
like "$last" "gave up after 3 attempts" "long outage: ... and that the retries were spent"
grep -q "multipart upload of .* aborted" "$TMP/push.err"
ok $? "long outage: the multipart upload was aborted" || diag_file "$TMP/push.err" 30
run backup_names
is "$OUT" "$NAME1" "long outage: the failed backup is not listed"
run s3_multipart_uploads
is "$OUT" "" "long outage: no multipart upload is left behind"
unset CAIRN_S3_MAX_RETRIES CAIRN_S3_RETRY_BASE_MS CAIRN_S3_RETRY_MAX_MS
push_ok "after the failure the next backup works (no lock left)" "$TMP/src2"
check "the repository verifies" cairn verify

done_testing
