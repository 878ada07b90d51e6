#!/bin/bash
# dedup.sh - every backup is full but costs an incremental: an unchanged tree
# adds almost nothing, a 1% change adds little (content-defined chunking
# survives inserted bytes), and all backups restore their own tree.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

export CAIRN_COMPRESSION=zstd
SRC=$TMP/src
TREE_COMPRESSIBLE_PCT=15 make_tree "$SRC" "${DEDUP_TREE_MB:-100}" 404 || ok 1 "make the source tree"
tree_digest "$SRC" >"$TMP/d1.dig"

files_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'; }
entries_count() { find "$1" | wc -l; }
show() { # NAME FIELD: a field of backup-show --json
	cairn backup-show "$1" --json | json_get "d[\"$2\"]"
}
pct() { # A B: A as a percentage of B, two decimals
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f\n", 100 * a / b }'
}

# ---- backup 1 ----
t0=$(date +%s)
push_ok "backup 1" "$SRC"
B1=$PUSHED
R1=$(repo_bytes "$REPO")
diag "backup 1: $R1 repository bytes, $(($(date +%s) - t0)) s"
F1=$(files_bytes "$SRC")
cmp_ok $((R1 * 2)) -gt "$F1" "backup 1 stored the incompressible data ($R1 bytes for $F1)"

# ---- backup 2: nothing changed ----
t0=$(date +%s)
push_ok "backup 2 of the unchanged tree" "$SRC"
B2=$PUSHED
R2=$(repo_bytes "$REPO")
A2=$((R2 - R1))
diag "backup 2 added $A2 bytes ($(pct "$A2" "$R1")% of backup 1), $(($(date +%s) - t0)) s"
cmp_ok $((A2 * 100)) -lt "$R1" "backup 2 added less than 1% of backup 1's bytes ($A2 of $R1)"

# ---- backup 3: about 1% changed ----
mapfile -t big < <(find "$SRC/data/bin" -type f -printf '%s %p\n' | sort -rn | head -n 3 | cut -d' ' -f2-)
ok "$([ "${#big[@]}" = 3 ]; echo $?)" "the tree has three large random files to change"
changed=0
if [ "${#big[@]}" = 3 ]; then
	for i in 0 1; do
		sz=$(file_size "${big[$i]}")
		overwrite_random "${big[$i]}" $((sz / 2)) $((384 * 1024)) $((40 + i))
		changed=$((changed + 384 * 1024))
	done
	insert_random "${big[2]}" 4096 100 42
	changed=$((changed + 100))
fi
rand_file "$SRC/docs/new-small.bin" 8192 43
printf 'one more line\n' >>"$SRC/docs/d01/f0001.txt"
changed=$((changed + 8192 + 14))
diag "changed $changed bytes ($(pct "$changed" "$(files_bytes "$SRC")")% of the data)"
tree_digest "$SRC" >"$TMP/d3.dig"

t0=$(date +%s)
push_ok "backup 3 after a 1% change" "$SRC"
B3=$PUSHED
R3=$(repo_bytes "$REPO")
A3=$((R3 - R2))
diag "backup 3 added $A3 bytes ($(pct "$A3" "$R1")% of backup 1), $(($(date +%s) - t0)) s"
cmp_ok $((A3 * 100)) -lt $((R1 * 5)) "backup 3 added less than 5% of backup 1's bytes ($A3 of $R1)"
cmp_ok "$A3" -ge "$((changed / 2))" "backup 3 stored the changed data (it is incompressible)"

# ---- what backup-show says ----
S1=$(show "$B1" stored_size)
S2=$(show "$B2" stored_size)
S3=$(show "$B3" stored_size)
diag "stored_size: $S1 $S2 $S3"
cmp_ok "$S1" -le "$R1" "backup 1's stored_size ($S1) is at most what the repository holds ($R1)"
cmp_ok $((S1 * 2)) -ge "$R1" "backup 1's stored_size ($S1) is most of what the repository holds ($R1)"
cmp_ok $((S2 * 100)) -lt "$S1" "backup 2's stored_size ($S2) is less than 1% of backup 1's ($S1)"
cmp_ok $((S3 * 100)) -lt $((S1 * 5)) "backup 3's stored_size ($S3) is less than 5% of backup 1's ($S1)"
cmp_ok "$S3" -le "$A3" "backup 3's stored_size ($S3) is at most what it added to the repository ($A3)"
cmp_ok "$S3" -gt "$S2" "backup 3 stored more than the unchanged backup 2"

# Logical size and entries: the whole tree each time, whatever was stored.
L1=$(show "$B1" size)
L2=$(show "$B2" size)
L3=$(show "$B3" size)
F3=$(files_bytes "$SRC")
is "$L2" "$L1" "backups 1 and 2 have the same logical size"
between "$L3" "$F3" $((F3 + 65536)) "backup 3's size ($L3) is the tree's logical size ($F3 bytes of files)"
is "$((L3 - L1))" "$((changed - 2 * 384 * 1024))" "the logical size grew by the bytes added"
E3=$(show "$B3" entries)
N3=$(entries_count "$SRC")
between "$E3" $((N3 - 1)) "$N3" "backup 3 has an entry per file, folder and link ($E3; the tree has $N3 with its root)"
is "$(show "$B1" entries)" "$((E3 - 1))" "backup 1 has one entry less (the added file)"

# ---- all three restore their own tree ----
for pair in "$B1:d1" "$B2:d1" "$B3:d3"; do
	name=${pair%:*}
	dig=${pair##*:}
	fetch_ok "backup-fetch $name" "$name" "$TMP/out"
	same_tree "$TMP/$dig.dig" "$TMP/out" "$name restores its tree ($dig)"
	rm -rf "$TMP/out"
done
check "verify of the whole repository exits 0" cairn verify

done_testing
