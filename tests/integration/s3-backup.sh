#!/bin/bash
# tests/integration/s3-backup.sh - dir backups through the s3 storage with a
# WAL-G setup left as it is (the README's example): WALE_S3_PREFIX or
# WALG_S3_PREFIX, AWS_ENDPOINT, AWS_S3_FORCE_PATH_STYLE, AWS_REGION,
# WALG_COMPRESSION_METHOD=brotli; then deduplication, retention with
# garbage collection (DeleteObjects), and an encrypted repository whose
# plaintext never reaches the server.
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

trap 's3_stop; _cleanup' EXIT

if ! s3_start "$TMP/s3"; then
	ok 1 "versitygw starts"
	done_testing
fi
ok 0 "versitygw starts on $S3_ENDPOINT"
BUCKET_DIR=$TMP/s3/data/$S3_BUCKET

# The WAL-G environment of the README: no CAIRN_REPO anywhere.
export WALE_S3_PREFIX=s3://$S3_BUCKET/pg1 WALG_COMPRESSION_METHOD=brotli
wal_g() { cairn_norepo "$@"; }
make_tree "$TMP/src" 24 7
tree_digest "$TMP/src" >"$TMP/src.digest"

run wal_g dir backup-push "$TMP/src"
is "$RC" 0 "backup-push with WALE_S3_PREFIX and AWS_* only" || diag_file "$ERRF"
FIRST=$OUT
like "$FIRST" "$BACKUP_NAME_RE" "... prints the backup's name"
[ -n "$(find "$BUCKET_DIR/pg1/catalog" -type f 2>/dev/null)" ]
ok $? "the repository is in the bucket below pg1/"
run wal_g backup-list --json
is "$(json_get '[b["name"] for b in d]' <"$OUTF")" "[\"$FIRST\"]" "backup-list shows it"
check "backup-fetch restores it" wal_g dir backup-fetch "$TMP/dst1" LATEST
same_tree "$TMP/src.digest" "$TMP/dst1" "the restored tree is the original"
check "verify reads every object back" wal_g verify
like "$OUT" "no problems" "... and finds no problem"
stored1=$(repo_bytes "$BUCKET_DIR/pg1")
# FORMAT.md: byte 5 of the first frame header (after the 8-byte object header) is the codec.
codec() { od -An -tu1 -j13 -N1 "$1" | tr -d ' '; }
is "$(codec "$BUCKET_DIR/pg1/manifests/$FIRST")" 4 "WALG_COMPRESSION_METHOD=brotli: the manifest is brotli (codec 4)"
unset WALE_S3_PREFIX
export WALG_S3_PREFIX=s3://$S3_BUCKET/pg1
run env CAIRN_COMPRESSION=none CAIRN_REPO="s3://$S3_BUCKET/plain" "$CAIRN" dir backup-push "$TMP/src"
is "$RC" 0 "the same tree into another prefix with CAIRN_COMPRESSION=none"
is "$(codec "$BUCKET_DIR/plain/manifests/$OUT")" 0 "... has codec 0: the check can tell"

# ---- deduplication and retention ----
printf 'one more line\n' >>"$TMP/src/docs/marker.txt"
tree_digest "$TMP/src" >"$TMP/src2.digest"
run wal_g dir backup-push "$TMP/src"
is "$RC" 0 "a second backup with WALG_S3_PREFIX"
SECOND=$OUT
grown=$(($(repo_bytes "$BUCKET_DIR/pg1") - stored1))
cmp_ok "$grown" -lt $((stored1 / 4)) "the second backup stores little (deduplicated: $grown bytes)"
run wal_g delete retain 1 --confirm
is "$RC" 0 "delete retain 1 --confirm"
like "$OUT" "deleted $FIRST" "... deletes the first backup"
run wal_g backup-list --json
is "$(json_get '[b["name"] for b in d]' <"$OUTF")" "[\"$SECOND\"]" "only the second is listed"
check "the second restores after the first was deleted" wal_g dir backup-fetch "$TMP/dst2" "$SECOND"
same_tree "$TMP/src2.digest" "$TMP/dst2" "... to the changed tree"
check "verify after garbage collection" wal_g verify

# ---- encrypted repository ----
export CAIRN_ENCRYPTION_PASSPHRASE="s3 test passphrase"
run env CAIRN_REPO="s3://$S3_BUCKET/secret" "$CAIRN" dir backup-push "$TMP/src"
is "$RC" 0 "backup into an encrypted repository on s3" || diag_file "$ERRF"
grep -rqF "$TREE_MARKER" "$BUCKET_DIR/secret"
isnt $? 0 "no plaintext of the tree is in the bucket"
grep -rqF "$TREE_MARKER" "$BUCKET_DIR/plain"
is $? 0 "(while the uncompressed clear repository holds it: the check can see plaintext)"
check "the encrypted backup restores" env CAIRN_REPO="s3://$S3_BUCKET/secret" "$CAIRN" \
	dir backup-fetch "$TMP/dst3" LATEST
same_tree "$TMP/src2.digest" "$TMP/dst3" "... to the same tree"
CAIRN_ENCRYPTION_PASSPHRASE=wrong expect_fail -c 6 "a wrong passphrase: exit 6" \
	env CAIRN_REPO="s3://$S3_BUCKET/secret" "$CAIRN" backup-list
unset CAIRN_ENCRYPTION_PASSPHRASE

run s3_multipart_uploads
is "$OUT" "" "no multipart upload is left"

done_testing
