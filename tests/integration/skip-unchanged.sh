#!/bin/bash
# skip-unchanged.sh - a file with the size and modification time it had in
# the previous backup of the same source is taken from it, not read again;
# the safety rules of that shortcut (README "Skipping unchanged files").
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SRC=$TMP/src
mkdir -p "$SRC/sub"
rand_file "$SRC/a.bin" 300000 1
rand_file "$SRC/sub/b.bin" 200000 2
printf 'hello\n' >"$SRC/c.txt"
# Modified well before the first backup: eligible for reuse.
touch -d '2 hours ago' "$SRC/a.bin" "$SRC/sub/b.bin" "$SRC/c.txt"

push_ok "backup 1" "$SRC"
B1=$PUSHED
R1=$(repo_bytes "$REPO")

# Same size, same mtime, other bytes: the rule says "unchanged", so cairn
# must not read it. Restoring then gives the old bytes: proof it was skipped.
cp -p "$SRC/a.bin" "$TMP/a.orig"
overwrite_random "$SRC/a.bin" 1000 5000 3
touch -r "$TMP/a.orig" "$SRC/a.bin"
# A changed size is always read.
printf 'hello, world\n' >"$SRC/c.txt"
touch -d '2 hours ago' "$SRC/c.txt"

run cairn dir backup-push "$SRC" -v
is "$RC" 0 "backup 2 exits 0"
B2=$OUT
like "$(cat "$ERRF")" "unchanged files are taken from backup $B1" "backup 2 says which backup it took unchanged files from"
fetch_ok "backup 2 restores" "$B2" "$TMP/r2"
cmp -s "$TMP/r2/a.bin" "$TMP/a.orig"
ok $? "a.bin (same size and mtime) was taken from backup 1, not read"
is "$(cat "$TMP/r2/c.txt")" "hello, world" "c.txt (size changed) was read again"
cmp -s "$TMP/r2/sub/b.bin" "$SRC/sub/b.bin"
ok $? "sub/b.bin is restored"
R2=$(repo_bytes "$REPO")
cmp_ok $(((R2 - R1) * 100)) -lt "$R1" "backup 2 stored under 1% of backup 1 ($((R2 - R1)) bytes)"

# skip-unchanged=false reads every file.
run cairn dir backup-push "$SRC" --skip-unchanged=false
is "$RC" 0 "backup 3 with --skip-unchanged=false"
B3=$OUT
fetch_ok "backup 3 restores" "$B3" "$TMP/r3"
cmp -s "$TMP/r3/a.bin" "$SRC/a.bin"
ok $? "with --skip-unchanged=false the new bytes of a.bin were read"

# A file modified within a second of the previous backup's start is read
# again even with the same size and mtime (a write in the same second may
# keep the timestamp).
push_ok "backup 4" "$SRC"
B4=$PUSHED
start=$(cairn backup-show "$B4" --json | json_get 'd["start_time"]')
overwrite_random "$SRC/sub/b.bin" 0 1000 4
touch -d "$start" "$SRC/sub/b.bin"
push_ok "backup 5" "$SRC"
B5=$PUSHED
fetch_ok "backup 5 restores" "$B5" "$TMP/r5"
cmp -s "$TMP/r5/sub/b.bin" "$SRC/sub/b.bin"
ok $? "a file stamped with the previous backup's start second is read again"

# Another source never lends its files.
mkdir -p "$TMP/other"
cp -p "$SRC/c.txt" "$TMP/other/c.txt"
run cairn dir backup-push "$TMP/other" -v
is "$RC" 0 "backup of another source"
unlike "$(cat "$ERRF")" "unchanged files are taken" "it takes nothing from backups of $SRC"

check "verify" cairn verify
check "delete retain 1 --confirm" cairn delete retain 1 --confirm
done_testing
