#!/bin/bash
# tests/integration/s3-storage.sh - the s3 storage's own behaviour against
# versitygw (a real S3 server that checks every signature): objects of 0
# bytes, one part and many parts (checked by their ETag as the server made
# them), ranges, listing past 1,000 keys with continuation tokens, batch
# removal past 1,000 keys, key checks, and path-style addressing from the
# WAL-G variable names. The storage contract suite shared with fs runs in
# s3-contract.sh.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

trap 's3_stop; _cleanup' EXIT

if ! s3_start "$TMP/s3"; then
	ok 1 "versitygw starts"
	done_testing
fi
ok 0 "versitygw starts on $S3_ENDPOINT"
REPO=s3://$S3_BUCKET/storage/test
DATA=$TMP/s3/data/$S3_BUCKET/storage/test
# Small parts so that "many parts" stays small; 5 MiB is S3's minimum.
export CAIRN_S3_PART_SIZE=5M CAIRN_UPLOAD_CONCURRENCY=3

run cairn_norepo plugins
like "$OUT" '^storage +s3 ' "cairn plugins lists the s3 storage"

# ---- put and get of 0 bytes, one part, exactly one part, many parts ----
: >"$TMP/zero"
rand_file "$TMP/small" 1000 1
rand_file "$TMP/onepart" $((5 * 1048576)) 2
rand_file "$TMP/many" $((23 * 1048576 + 12345)) 3
for f in zero small onepart many; do
	check "put $f" cairn st put "obj/$f" "$TMP/$f"
	run cairn st cat "obj/$f"
	is "$(sha256sum <"$OUTF")" "$(sha256sum <"$TMP/$f")" "get $f returns the same bytes"
done
etag() { s3_api HEAD "/$S3_BUCKET/storage/test/obj/$1" -I | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: *//p'; }
like "$(etag small)" '^"[0-9a-f]{32}"$' "a small object is one PUT (plain MD5 ETag)"
like "$(etag onepart)" '^"[0-9a-f]{32}"$' "an object of exactly one part is one PUT"
like "$(etag many)" '^"[0-9a-f]{32}-5"$' "23 MiB with 5 MiB parts is a multipart upload of 5 parts"
is "$(stat -c %s "$DATA/obj/many")" $((23 * 1048576 + 12345)) "the server holds all bytes of the multipart object"

# Memory is bounded by (upload-concurrency + 1) parts, not by the object:
# 64 MiB through 3 x 5 MiB buffers stays far below the object's size.
rand_file "$TMP/big" $((64 * 1048576)) 4
run /usr/bin/time -f 'maxrss %M' "$CAIRN" --repo "$REPO" --upload-concurrency 2 st put obj/big "$TMP/big"
is "$RC" 0 "put of 64 MiB with upload-concurrency 2"
rss=$(sed -n 's/^maxrss //p' "$ERRF")
between "${rss:-0}" 1 $((48 * 1024)) "... peaks under 48 MiB of memory (${rss:-?} KiB)"
run cairn st cat obj/big
ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$TMP/big"; echo $?)" "... and reads back byte for byte"
check "remove it" cairn st rm obj/big
rm -f "$TMP/big"

run cairn st ls obj/
is "$(sort "$OUTF")" "$(printf 'obj/many\t%d\nobj/onepart\t%d\nobj/small\t1000\nobj/zero\t0' \
	$((23 * 1048576 + 12345)) $((5 * 1048576)))" "list reports keys and sizes"

# put replaces
check "put over an existing object" cairn st put obj/small "$TMP/zero"
run cairn st cat obj/small
is "$(wc -c <"$OUTF")" 0 "the object was replaced whole"

# ---- ranges ----
run cairn st cat obj/many 7340000 1000
is "$(sha256sum <"$OUTF")" "$(tail -c +7340001 "$TMP/many" | head -c 1000 | sha256sum)" \
	"a range across a part boundary"
run cairn st cat obj/many $((23 * 1048576))
is "$(sha256sum <"$OUTF")" "$(tail -c 12345 "$TMP/many" | sha256sum)" "a range to the end"
run cairn st cat obj/many $((23 * 1048576 + 12000)) 100000
is "$(wc -c <"$OUTF")" 345 "a range crossing the end delivers what exists"
check "a range past the end succeeds" cairn st cat obj/many $((30 * 1048576)) 10
is "$(wc -c <"$OUTF")" 0 "... and delivers nothing"
expect_fail -c 3 "get of a missing key: not found (exit 3)" cairn st cat obj/missing

# ---- keys ----
expect_fail -c 2 "a key with '..' is refused" cairn st put ../escape "$TMP/small"
expect_fail -c 2 "a key with a space is refused" cairn st put "a b" "$TMP/small"
expect_fail -c 2 "a list prefix with '%' is refused" cairn st ls "a%2f"

# ---- list and remove past 1,000 keys ----
# The objects are laid into the server's folder directly: 1,205 puts
# through cairn would take a minute, and listing is what is tested here.
mkdir -p "$DATA/many/a" "$DATA/many/b"
for i in $(seq -w 1 1205); do
	printf '%s' "$i" >"$DATA/many/a/k$i"
done
printf 'x' >"$DATA/many/b/other"
run cairn st ls many/
is "$(grep -c . "$OUTF")" 1206 "list pages past 1,000 keys (continuation token)"
is "$(cut -f1 "$OUTF" | sort -u | grep -c .)" 1206 "... with no key twice"
run cairn st ls many/a/k1
is "$(grep -c . "$OUTF")" 206 "a prefix ending inside a name (many/a/k1: k1000-k1205)"
grep -q "^many/a/k1042	4$" "$OUTF"
ok $? "... with sizes"
run cairn st ls many/a/k0042
is "$OUT" "$(printf 'many/a/k0042\t4')" "list of one key"

run cairn st ls many/a/
mapfile -t keys < <(cut -f1 "$OUTF")
is "${#keys[@]}" 1205 "1,205 keys to remove"
batches() { grep -c "| POST | /$S3_BUCKET | - | delete=" "$TMP/s3/versitygw.log"; }
before=$(batches)
check "remove 1,205 keys in one call" cairn st rm "${keys[@]}"
is "$(($(batches) - before))" 2 "... in two DeleteObjects requests (1,000 + 205)"
run cairn st ls many/
is "$OUT" "$(printf 'many/b/other\t1')" "only the key not removed is left"
is "$(find "$DATA/many" -type f | wc -l)" 1 "the server holds none of the removed objects"
check "removing keys that do not exist succeeds" cairn st rm many/a/k0001 nothing/here
expect_fail -c 2 "a batch with one bad key removes nothing" cairn st rm many/b/other "bad key"
run cairn st ls many/b/
is "$OUT" "$(printf 'many/b/other\t1')" "... the good key is still there"

# ---- a server without DeleteObjects: one DELETE per key ----
rm -f "$TMP/proxy.port" "$TMP/proxy.log"
"$PYTHON" "$CAIRN_SRCDIR/tests/lib/s3-drop-proxy.py" "$TMP/proxy.port" "$TMP/proxy.log" \
	"$S3_PORT" POST "delete=" notimplemented 2>"$TMP/proxy.err" &
PROXY_PID=$!
BG_PIDS+=("$PROXY_PID")
for _ in $(seq 1 100); do
	[ -s "$TMP/proxy.port" ] && break
	sleep 0.05
done
if wait_port "$(cat "$TMP/proxy.port" 2>/dev/null || echo 0)" 10; then
	for k in 1 2 3; do cairn st put "nodelete/k$k" "$TMP/small" >/dev/null 2>&1; done
	check "remove where DeleteObjects is not implemented" env \
		AWS_ENDPOINT="http://127.0.0.1:$(cat "$TMP/proxy.port")" CAIRN_REPO="$REPO" \
		"$CAIRN" st rm nodelete/k1 nodelete/k2 nodelete/k3
	grep -q "POST /$S3_BUCKET?delete= 501" "$TMP/proxy.log"
	ok $? "... the server answered NotImplemented to DeleteObjects"
	is "$(grep -c "^DELETE /$S3_BUCKET/storage/test/nodelete/k[123] 20[04]" "$TMP/proxy.log")" 3 \
		"... so each key was deleted alone"
	run cairn st ls nodelete/
	is "$OUT" "" "... and none is left"
else
	ok 1 "the proxy starts"
	diag_file "$TMP/proxy.err"
fi
kill "$PROXY_PID" 2>/dev/null

# ---- no multipart upload left behind by any of this ----
run s3_multipart_uploads
is "$OUT" "" "no unfinished multipart upload in the bucket"
# ... and the check sees one when there is one.
id=$(s3_api POST "/$S3_BUCKET/storage/test/unfinished?uploads=" | grep -o '<UploadId>[^<]*' | cut -d'>' -f2)
run s3_multipart_uploads
is "$OUT" "storage/test/unfinished" "an unfinished multipart upload is seen by the check"
s3_api DELETE "/$S3_BUCKET/storage/test/unfinished?uploadId=$id" >/dev/null

done_testing
