#!/bin/bash
# index-spill.sh - a chunk index larger than index-memory goes to temp files
# (sorted runs) during backups and restores, and nothing changes for the
# user: deduplication against chunks that are only in runs, restores that
# find every chunk there, verify, and garbage collection that writes the
# index back in objects of about 1 MiB.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

# Small chunks and a 64 KiB index: a 60 MB tree makes some 15,000 entries,
# about 900 fit in memory, so backups spill and merge runs.
export CAIRN_CHUNK_MIN_SIZE=1K CAIRN_CHUNK_AVG_SIZE=4K CAIRN_CHUNK_MAX_SIZE=16K
export CAIRN_INDEX_MEMORY=64K CAIRN_COMPRESSION=zstd
export TMPDIR=$TMP/spill
mkdir -p "$TMPDIR"

SRC=$TMP/src
make_tree "$SRC" 60 77 || ok 1 "make the source tree"
tree_digest "$SRC" >"$TMP/d1.dig"

push_ok "backup 1 (index spilled to runs)" "$SRC" -v
B1=$PUSHED
like "$ERR" "chunk index: more than 64 KiB in memory" "the verbose log says the index went to temp files"
R1=$(repo_bytes "$REPO")
chunks=$(cairn backup-show "$B1" --json | json_get 'd["chunks"]')
cmp_ok "$chunks" -gt 10000 "backup 1 has more chunks ($chunks) than the index holds in memory"
is "$(find "$TMPDIR" -type f | wc -l)" 0 "the runs' temp files are gone (unlinked while open)"

# The same tree again, read in full: every chunk is found, most of them in runs.
push_ok "backup 2 of the unchanged tree, reading every file" "$SRC" --skip-unchanged=false
B2=$PUSHED
A2=$(($(repo_bytes "$REPO") - R1))
cmp_ok $((A2 * 100)) -lt "$R1" "backup 2 added under 1% ($A2 bytes): chunks in runs were found"

# A few changes: only they are stored.
dd if=/dev/urandom of="$SRC/$(ls "$SRC" | head -n 1)" bs=1k count=64 seek=100 conv=notrunc status=none
echo "new file" >"$SRC/new.txt"
tree_digest "$SRC" >"$TMP/d3.dig"
push_ok "backup 3 after small changes" "$SRC"
B3=$PUSHED

fetch_ok "restore backup 1" "$B1" "$TMP/r1"
is "$(tree_digest "$TMP/r1")" "$(cat "$TMP/d1.dig")" "backup 1 restores its tree (index in runs)"
fetch_ok "restore backup 3" "$B3" "$TMP/r3"
is "$(tree_digest "$TMP/r3")" "$(cat "$TMP/d3.dig")" "backup 3 restores its tree"
check "verify of every backup" cairn verify

# Garbage collection walks the whole index in memory and writes it back in pieces.
check "delete backup 1 and collect garbage" cairn delete retain 2 --confirm
n=$(find "$REPO/index" -type f | wc -l)
cmp_ok "$n" -gt 1 "the index was written back as $n objects"
big=$(find "$REPO/index" -type f -size +1200k | wc -l)
is "$big" 0 "no index object is much larger than 1 MiB"
fetch_ok "restore backup 3 after garbage collection" "$B3" "$TMP/r3b"
is "$(tree_digest "$TMP/r3b")" "$(cat "$TMP/d3.dig")" "backup 3 still restores its tree"
push_ok "backup 4 after garbage collection" "$SRC"
check "verify after garbage collection" cairn verify

done_testing
