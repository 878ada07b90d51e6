#!/bin/bash
# tests/integration/s3-contract.sh - the storage contract suite that every
# storage passes (tests/integration/storage-contract.sh, also run on fs),
# here on the s3 storage against versitygw. Its TAP is the suite's own;
# this script only provides the server and STORAGE_URL.
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3-contract.XXXXXX") || exit 1
trap 's3_stop; rm -rf "$dir"' EXIT
if ! s3_start "$dir" 2>"$dir/start.err"; then
	echo "not ok 1 - versitygw starts"
	sed 's/^/# /' "$dir/start.err"
	echo "1..1"
	exit 1
fi
# Small parts, so that the suite's larger objects take several.
export CAIRN_S3_PART_SIZE=5M
export STORAGE_URL=s3://$S3_BUCKET/contract
bash "$CAIRN_SRCDIR/tests/integration/storage-contract.sh"
