#!/bin/bash
# storage-contract.sh - what every storage plugin must do, checked through
# `cairn st` against STORAGE_URL (default: a local folder, the fs storage).
# The same script runs against s3://, gs://, azure://, ssh:// locations.
# All keys go below a unique prefix, removed at the end.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

if [ -z "${STORAGE_URL:-}" ]; then
	STORAGE_URL=$TMP/store
	mkdir -p "$STORAGE_URL"
fi
diag "storage: $STORAGE_URL"
P=contract-$$-$(date +%s)

st() { cairn_norepo --repo "$STORAGE_URL" st "$@"; }

# ls_keys PREFIX: the keys of `st ls PREFIX`, sorted (first field of each line).
ls_keys() {
	st ls "$1" | awk '{ print $1 }' | sort
}

D=$TMP/data
mkdir -p "$D"
: >"$D/0"
printf 'x' >"$D/1"
rand_file "$D/1m" 1048576 1
rand_file "$D/20m" $((20 * 1048576)) 2

# ---- put / cat round trips ----
for n in 0 1 1m 20m; do
	check "put of a $n-byte object" st put "$P/obj/$n" "$D/$n"
	run st cat "$P/obj/$n"
	ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$D/$n"; echo $?)" "cat returns the $n-byte object byte for byte"
	[ "$RC" = 0 ] || _show_result
done
# shellcheck disable=SC2016 # expanded by the inner sh
check "put from a pipe (unknown size)" sh -c 'cat "$1" | "$2" --repo "$3" st put "$4"' sh \
	"$D/1m" "$CAIRN" "$STORAGE_URL" "$P/obj/piped"
run st cat "$P/obj/piped"
ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$D/1m"; echo $?)" "the object put from a pipe reads back byte for byte"

# ---- range reads ----
range() { # LABEL KEY FILE OFFSET [LENGTH]
	local label=$1 key=$2 f=$3 off=$4
	if [ $# -ge 5 ]; then
		tail -c +$((off + 1)) "$f" | head -c "$5" >"$TMP/range.want"
		run st cat "$key" "$off" "$5"
	else
		tail -c +$((off + 1)) "$f" >"$TMP/range.want"
		run st cat "$key" "$off"
	fi
	ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$TMP/range.want"; echo $?)" "range read: $label"
	[ "$RC" = 0 ] || _show_result
}
M=1048576
range "start (0, 100)" "$P/obj/1m" "$D/1m" 0 100
range "middle (500000, 1000)" "$P/obj/1m" "$D/1m" 500000 1000
range "end (size-10, 10)" "$P/obj/1m" "$D/1m" $((M - 10)) 10
range "across the end (size-10, 100) gives 10 bytes" "$P/obj/1m" "$D/1m" $((M - 10)) 100
range "beyond the end (size+5, 10) gives nothing" "$P/obj/1m" "$D/1m" $((M + 5)) 10
range "offset only (700000 to the end)" "$P/obj/1m" "$D/1m" 700000
range "20 MiB object, 3 MiB from its middle" "$P/obj/20m" "$D/20m" $((10 * M + 12345)) $((3 * M))
range "1-byte object, whole" "$P/obj/1" "$D/1" 0 1

# ---- overwrite ----
check "put over an existing key" st put "$P/obj/1m" "$D/1"
run st cat "$P/obj/1m"
ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$D/1"; echo $?)" "the overwritten key has only the new content"

# ---- list ----
for k in ls/a/1 ls/a/2 ls/b/1 ls/ab ls/a.b_c-d; do
	st put "$P/$k" "$D/1" >/dev/null 2>"$TMP/put.err" || diag "put $P/$k failed: $(cat "$TMP/put.err")"
done
check "ls of a prefix exits 0" st ls "$P/ls/a/"
is "$(ls_keys "$P/ls/a/")" "$(printf '%s\n' "$P/ls/a/1" "$P/ls/a/2")" "ls PREFIX/ lists exactly the keys below it"
is "$(ls_keys "$P/ls/a")" "$(printf '%s\n' "$P/ls/a.b_c-d" "$P/ls/a/1" "$P/ls/a/2" "$P/ls/ab" | sort)" \
	"ls of a partial name lists every key starting with it"
is "$(ls_keys "$P/ls/nothing-here")" "" "ls of a prefix without keys lists nothing"
is "$(st ls "$P/obj/" | awk -v k="$P/obj/20m" '$1 == k { print $2 }')" $((20 * M)) "ls gives the size of each key"
is "$(st ls "$P/obj/" | awk -v k="$P/obj/0" '$1 == k { print $2 }')" 0 "ls gives size 0 for the empty object"

# More than 1000 keys (one page of most object stores).
seq -f '%04g' 1 1100 >"$TMP/many.idx"
# shellcheck disable=SC2016 # expanded by the inner sh
run sh -c 'xargs -P 8 -I{} "$1" --repo "$2" st put "$3/many/k{}" "$4" <"$5"' sh \
	"$CAIRN" "$STORAGE_URL" "$P" "$D/1" "$TMP/many.idx"
ok "$RC" "put 1100 small keys"
[ "$RC" = 0 ] || _show_result
sed "s|^|$P/many/k|" "$TMP/many.idx" | sort >"$TMP/many.want"
ls_keys "$P/many/" >"$TMP/many.got"
is "$(wc -l <"$TMP/many.got")" 1100 "ls lists all 1100 keys"
ok "$(cmp -s "$TMP/many.want" "$TMP/many.got"; echo $?)" "ls lists exactly the 1100 keys put"
is "$(ls_keys "$P/many/k10" | wc -l)" 100 "ls of a partial name among 1100 keys (k10: k1000-k1099)"
mapfile -t many <"$TMP/many.want"
check "rm of 1100 keys in one command" st rm "${many[@]}"
is "$(ls_keys "$P/many/")" "" "no key is left after rm"

# ---- remove ----
check "rm of several keys at once" st rm "$P/ls/a/1" "$P/ls/a/2"
is "$(ls_keys "$P/ls/")" "$(printf '%s\n' "$P/ls/a.b_c-d" "$P/ls/ab" "$P/ls/b/1" | sort)" "rm removed exactly those keys"
check "rm of a missing key succeeds" st rm "$P/ls/no-such-key"
check "rm of a missing and an existing key succeeds" st rm "$P/ls/no-such-key" "$P/ls/ab"
is "$(ls_keys "$P/ls/")" "$(printf '%s\n' "$P/ls/a.b_c-d" "$P/ls/b/1" | sort)" "the existing key was removed"
expect_fail -c 3 "cat of a missing key: exit 3, one error line" st cat "$P/ls/no-such-key"
expect_fail -c 3 "cat of a removed key: exit 3" st cat "$P/ls/a/1"

# ---- atomic visibility ----
# An upload in progress is invisible; a killed one leaves nothing visible.
atomic_put() { # KEY KILL(0|1)
	local key=$1 kill_it=$2 pid rc
	rm -f "$TMP/fifo"
	mkfifo "$TMP/fifo"
	"$CAIRN" --repo "$STORAGE_URL" st put "$key" <"$TMP/fifo" >"$TMP/bg.out" 2>"$TMP/bg.err" &
	pid=$!
	BG_PIDS+=("$pid")
	exec 7>"$TMP/fifo"
	timeout 120 head -c $((2 * M)) "$D/20m" >&7
	sleep 1.5
	run st cat "$key"
	is "$RC" 3 "an object being uploaded is not visible yet (kill=$kill_it)"
	is "$(ls_keys "$key")" "" "ls shows nothing of an upload in progress (kill=$kill_it)"
	if [ "$kill_it" = 1 ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		bg_forget "$pid"
		exec 7>&-
	else
		timeout 120 tail -c +$((2 * M + 1)) "$D/20m" >&7
		exec 7>&-
		wait "$pid"
		rc=$?
		bg_forget "$pid"
		is "$rc" 0 "the streamed put finishes"
		[ "$rc" = 0 ] || diag_file "$TMP/bg.err"
	fi
}
atomic_put "$P/atomic/done" 0
run st cat "$P/atomic/done"
ok "$([ "$RC" = 0 ] && cmp -s "$OUTF" "$D/20m"; echo $?)" "the streamed object is complete once the put returned"
atomic_put "$P/atomic/killed" 1
expect_fail -c 3 "a killed put leaves no object" st cat "$P/atomic/killed"
is "$(ls_keys "$P/atomic/")" "$P/atomic/done" "ls shows no trace of the killed put"

# ---- clean up ----
mapfile -t rest < <(ls_keys "$P/")
if [ "${#rest[@]}" -gt 0 ]; then
	check "rm of everything left" st rm "${rest[@]}"
fi
is "$(ls_keys "$P/")" "" "the test prefix is empty at the end"

done_testing
