#!/bin/bash
# The WAL scanner (drivers/postgres/walscan.c, through tests/unit/pg-walscan-dump)
# against PostgreSQL 15's own readers: on varied WAL of 1 MiB segments (pgbench,
# DDL, full-page images plain and compressed with pglz/lz4/zstd, VACUUM with
# visibility-map blocks, TRUNCATE, DROP, CREATE DATABASE both ways, an
# XLOG_SWITCH, records over pages and one over several segments), the block
# references must equal pg_waldump's, record by record, and the records (LSN,
# resource manager, main data length) pg_walinspect's. Broken input must fail
# with a message that says why: a recycled segment, a flipped byte, a
# truncated or zeroed last segment, a missing segment, the wrong timeline.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=../lib/postgres.sh
. "$CAIRN_SRCDIR/tests/lib/postgres.sh"
trap 'postgres_stop; _cleanup' EXIT

DUMP=$CAIRN_BUILDDIR/tests/unit/pg-walscan-dump
SEG=1048576
if [ ! -x "$DUMP" ]; then
	ok 1 "the dump program $DUMP is built (make check builds it)"
	done_testing
fi

# ---- a cluster with 1 MiB segments, WAL kept ------------------------------------
chmod 755 "$TMP"
mkdir -p "$TMP/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$TMP/pg"
PGD=$TMP/pg/data
as_postgres "$PG_BIN/initdb" -D "$PGD" -U postgres --auth=trust -E UTF8 --locale=C \
	--wal-segsize=1 >"$TMP/initdb.log" 2>&1
ok $? "initdb with 1 MiB WAL segments" || { diag_file "$TMP/initdb.log"; done_testing; }
PG_OPTS="-c wal_level=replica -c wal_keep_size=2GB -c max_wal_size=2GB -c checkpoint_timeout=1h \
-c autovacuum=off" postgres_start "$PGD"
ok $? "PostgreSQL 15 starts" || done_testing

q() {
	as_postgres "$PG_BIN/psql" -X -At -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres \
		-d "${2:-postgres}" -c "$1"
}

# ---- varied WAL -----------------------------------------------------------------------
gen() {
	q "CREATE EXTENSION pg_walinspect" &&
		as_postgres "$PG_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -U postgres -i -s 2 -q postgres &&
		as_postgres "$PG_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -U postgres -n -c 2 -t 300 postgres &&
		q "CREATE TABLE t1(id int PRIMARY KEY, v text, n int)" &&
		q "INSERT INTO t1 SELECT g, md5(g::text), g FROM generate_series(1, 20000) g" &&
		q "CREATE INDEX t1_n ON t1(n)" &&
		q "CHECKPOINT" &&
		q "UPDATE t1 SET n = n + 1 WHERE id % 7 = 0" &&
		q "SELECT pg_switch_wal()" >/dev/null &&
		q "ALTER SYSTEM SET wal_compression = 'pglz'" && q "SELECT pg_reload_conf()" >/dev/null &&
		q "CHECKPOINT" && q "UPDATE t1 SET n = n + 1 WHERE id % 5 = 0" &&
		q "ALTER SYSTEM SET wal_compression = 'lz4'" && q "SELECT pg_reload_conf()" >/dev/null &&
		q "CHECKPOINT" && q "UPDATE t1 SET n = n + 1 WHERE id % 3 = 0" &&
		q "ALTER SYSTEM SET wal_compression = 'zstd'" && q "SELECT pg_reload_conf()" >/dev/null &&
		q "CHECKPOINT" && q "UPDATE pgbench_accounts SET abalance = 1 WHERE aid % 11 = 0" &&
		q "ALTER SYSTEM SET wal_compression = 'off'" && q "SELECT pg_reload_conf()" >/dev/null &&
		q "DELETE FROM t1 WHERE id > 15000" &&
		q "VACUUM t1" &&
		q "VACUUM FREEZE pgbench_accounts" &&
		q "CREATE TABLE t2 AS SELECT * FROM t1 WHERE id < 5000" &&
		q "TRUNCATE t2" &&
		q "DROP TABLE t2" &&
		q "CREATE DATABASE d_copy STRATEGY FILE_COPY" &&
		q "CREATE DATABASE d_wal STRATEGY WAL_LOG" &&
		q "CREATE TABLE t3(x int)" d_wal && q "INSERT INTO t3 SELECT generate_series(1, 1000)" d_wal &&
		q "SELECT pg_logical_emit_message(true, 'walscan', repeat('m', 20000))" >/dev/null &&
		q "SELECT pg_logical_emit_message(true, 'walscan', repeat('M', 3000000))" >/dev/null &&
		q "CREATE TABLE big(t text)" && q "ALTER TABLE big ALTER t SET STORAGE EXTERNAL" &&
		q "INSERT INTO big SELECT string_agg(md5(g::text || r::text), '') FROM generate_series(1, 65536) g,
			generate_series(1, 2) r GROUP BY r" &&
		as_postgres "$PG_BIN/pgbench" -h "$PGHOST" -p "$PGPORT" -U postgres -n -c 2 -t 100 postgres
}
FIRST=$(q "SELECT pg_current_wal_lsn()")
gen >"$TMP/gen.log" 2>&1
ok $? "varied WAL is generated" || { diag_file "$TMP/gen.log"; done_testing; }
LAST=$(q "SELECT pg_current_wal_lsn()")
q "SELECT pg_switch_wal()" >/dev/null
# every record of the run, as pg_walinspect reads them
q "SELECT start_lsn, resource_manager, record_type, main_data_length
	FROM pg_get_wal_records_info('$FIRST', '$LAST')" >"$TMP/inspect.txt"
ok $? "pg_walinspect lists the records" || done_testing
diag "WAL from $FIRST to $LAST: $(grep -c '' "$TMP/inspect.txt") records"

# ---- helpers ------------------------------------------------------------------------------
_LSN_PY='
import sys
def lsn(t):
    hi, lo = t.split("/")
    return int(hi, 16) << 32 | int(lo, 16)
def fmt(v):
    return "%X/%X" % (v >> 32, v & 0xFFFFFFFF)
'

# lsn_calc EXPR: evaluates EXPR (Python; lsn("0/123"), fmt(int), SEG, recs = the
# LSNs of inspect.txt, in order) and prints the result.
lsn_calc() {
	"$PYTHON" -c "$_LSN_PY"'
SEG = '"$SEG"'
recs = [lsn(l.split("|")[0]) for l in open(sys.argv[2]) if l.strip()]
print(eval(sys.argv[1]))' "$1" "$TMP/inspect.txt"
}

# seg_files START END DIR: the segment files from START's to END's segment.
seg_files() {
	"$PYTHON" -c "$_LSN_PY"'
seg = '"$SEG"'
a, b = lsn(sys.argv[1]) // seg, lsn(sys.argv[2]) // seg
per = (1 << 32) // seg
for n in range(a, b + 1):
    print("%s/%08X%08X%08X" % (sys.argv[3], 1, n // per, n % per))' "$1" "$2" "$3"
}

_COMPARE_PY='
import re, sys
'"$_LSN_PY"'
waldump, ours, inspect, start, end = sys.argv[1:6]
start, end = lsn(start), lsn(end)
RMGRS = ["XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace", "MultiXact", "RelMap",
         "Standby", "Heap2", "Heap", "Btree", "Hash", "Gin", "Gist", "Sequence", "SPGist", "BRIN",
         "CommitTs", "ReplicationOrigin", "Generic", "LogicalMessage"]
# pg_waldump -b: a record line, then one line per block reference
want_blocks, want_recs, fpis, compressed, methods, cur = [], [], 0, 0, {}, None
for line in open(waldump):
    m = re.match(r"rmgr: (\S+) .* lsn: ([0-9A-F]+/[0-9A-F]+), prev", line)
    if m:
        cur = lsn(m.group(2))
        want_recs.append((cur, m.group(1)))
        continue
    m = re.match(r"\s+blkref #\d+: rel (\d+/\d+/\d+) fork (\w+) blk (\d+)(.*)", line)
    if m:
        want_blocks.append("%s rel %s fork %s blk %s" % (fmt(cur), m.group(1), m.group(2), m.group(3)))
        fpis += "FPW" in m.group(4)
        c = re.search(r"method: (\w+)", m.group(4))
        if c:
            compressed += 1
            methods[c.group(1)] = methods.get(c.group(1), 0) + 1
inspect_recs = {}
for line in open(inspect):
    if line.strip():
        l, rm, typ, mainlen = line.rstrip("\n").split("|")
        inspect_recs[lsn(l)] = (rm, typ, int(mainlen))
got_blocks, got_recs, types, problems = [], [], {}, []
for line in open(ours):
    f = line.split()
    if f[1] == "rel":
        got_blocks.append("%s %s" % (fmt(lsn(f[0])), " ".join(f[1:])))
        continue
    l, rmid, info, mainlen = lsn(f[0]), int(f[2]), int(f[4], 16), int(f[6])
    name = RMGRS[rmid] if rmid < len(RMGRS) else "rmid%d" % rmid
    got_recs.append((l, name))
    if l not in inspect_recs:
        problems.append("record at %s is not in pg_walinspect" % fmt(l))
        continue
    rm, typ, want_main = inspect_recs[l]
    if rm != name or mainlen != want_main:
        problems.append("record at %s: %s mainlen %d, pg_walinspect %s mainlen %d" % (fmt(l), name, mainlen, rm, want_main))
    # record types are named from the high nibble of xl_info
    key = (name, info & 0xF0)
    if types.setdefault(key, typ) != typ:
        problems.append("info 0x%02X of %s is both %s and %s" % (info, name, types[key], typ))
# (rmgr, record type): (mask, value) of xl_info, from the rmgr headers
ANCHORS = {("XLOG", "SWITCH"): (0xF0, 0x40), ("XLOG", "CHECKPOINT_ONLINE"): (0xF0, 0x10),
           ("Heap", "INSERT"): (0xF0, 0x00), ("Heap", "INSERT+INIT"): (0xF0, 0x80),
           ("Heap", "HOT_UPDATE"): (0x70, 0x40), ("Transaction", "COMMIT"): (0x70, 0x00),
           ("Heap2", "VISIBLE"): (0x70, 0x40), ("LogicalMessage", "MESSAGE"): (0xF0, 0x00)}
seen = {}
for (n, i), t in types.items():
    seen.setdefault((n, t), []).append(i)
for k, (mask, v) in ANCHORS.items():
    for i in seen.get(k, []):
        if i & mask != v:
            problems.append("%s %s has info 0x%02X, want 0x%02X under mask 0x%02X" % (k[0], k[1], i, v, mask))
if got_recs != want_recs:
    problems.append("records differ from pg_waldump: %d here, %d there" % (len(got_recs), len(want_recs)))
    import difflib
    problems += list(difflib.unified_diff(["%s %s" % (fmt(a), b) for a, b in want_recs],
                                          ["%s %s" % (fmt(a), b) for a, b in got_recs], "pg_waldump", "ours", n=1, lineterm=""))[:20]
if got_blocks != want_blocks:
    problems.append("block references differ from pg_waldump: %d here, %d there" % (len(got_blocks), len(want_blocks)))
    import difflib
    problems += list(difflib.unified_diff(want_blocks, got_blocks, "pg_waldump", "ours", n=1, lineterm=""))[:20]
if not got_recs or got_recs[0][0] < start or got_recs[-1][0] >= end:
    problems.append("records outside [start, end)")
for p in problems[:40]:
    print(p, file=sys.stderr)
forks = {}
for b in got_blocks:
    fk = b.split()[4]
    forks[fk] = forks.get(fk, 0) + 1
print("%d records, %d block refs (%s), %d with a full-page image, %d compressed (%s), %d anchors seen" % (
    len(got_recs), len(got_blocks), " ".join("%s %d" % kv for kv in sorted(forks.items())), fpis, compressed,
    " ".join("%s %d" % kv for kv in sorted(methods.items())),
    len([k for k in ANCHORS if k in seen])))
sys.exit(1 if problems else 0)
'

# compare NAME START END: our scan of [START, END) equals pg_waldump's.
compare() {
	local name=$1 start=$2 end=$3 files
	SUMMARY=""
	mapfile -t files < <(seg_files "$start" "$end" "$PGD/pg_wal")
	if ! "$PG_BIN/pg_waldump" -b --path "$PGD/pg_wal" --start "$start" --end "$end" \
		>"$TMP/waldump.txt" 2>"$TMP/waldump.err" || [ -s "$TMP/waldump.err" ]; then
		ok 1 "$name: pg_waldump reads $start..$end"
		diag_file "$TMP/waldump.err"
		return 1
	fi
	run "$DUMP" --seg-size "$SEG" --timeline 1 --start "$start" --end "$end" "${files[@]}"
	if [ "$RC" != 0 ]; then
		ok 1 "$name: the scanner reads $start..$end (${#files[@]} segments)"
		_show_result
		return 1
	fi
	cp "$OUTF" "$TMP/ours.txt"
	run "$PYTHON" -c "$_COMPARE_PY" "$TMP/waldump.txt" "$TMP/ours.txt" "$TMP/inspect.txt" "$start" "$end"
	ok "$RC" "$name: $start..$end, ${#files[@]} segments: $OUT" || diag "$ERR"
	SUMMARY=$OUT
}

# ---- comparisons ----------------------------------------------------------------------
# Starts and ends inside segments. pg_waldump reads only the bytes before
# --end, so the ends are record starts (a record straddling the end would be
# dropped there and reported here).
MID_START=$(lsn_calc 'fmt(next(r for r in recs if r % SEG > SEG // 3))')
MID_END=$(lsn_calc 'fmt(next(r for r in reversed(recs) if r % SEG < SEG // 2 and r % SEG > SEG // 10))')
compare "all the WAL" "$MID_START" "$MID_END"
like "$SUMMARY" "compressed \\(lz4 [1-9][0-9]* pglz [1-9][0-9]* zstd [1-9][0-9]*\\)" \
	"full-page images compressed with lz4, pglz and zstd were compared"
like "$SUMMARY" "\\(fsm [1-9][0-9]* main [1-9][0-9]* vm [1-9][0-9]*\\)" "blocks of the fsm and vm forks were compared"

# From inside the 3 MB record: the first segment starts with its tail, the
# next one is nothing but its tail.
BIG=$(q "SELECT start_lsn FROM pg_get_wal_records_info('$FIRST', '$LAST')
	WHERE resource_manager = 'LogicalMessage' AND main_data_length > 2000000")
TAIL_START=$(lsn_calc "fmt((lsn('$BIG') // SEG + 1) * SEG + 4000)")
TAIL_END=$(lsn_calc "fmt(next(r for r in recs if r > (lsn('$BIG') // SEG + 4) * SEG + SEG // 2))")
compare "from inside a record over several segments" "$TAIL_START" "$TAIL_END"
# Across it: start before, end after.
ACROSS_START=$(lsn_calc "fmt(recs[recs.index(lsn('$BIG')) - 3] + 8)")
compare "across a record over several segments" "$ACROSS_START" "$TAIL_END"
# Over the XLOG_SWITCH.
SWITCH=$(q "SELECT start_lsn FROM pg_get_wal_records_info('$FIRST', '$LAST')
	WHERE resource_manager = 'XLOG' AND record_type = 'SWITCH' LIMIT 1")
SW_START=$(lsn_calc "fmt(recs[recs.index(lsn('$SWITCH')) - 5])")
SW_END=$(lsn_calc "fmt(recs[recs.index(lsn('$SWITCH')) + 20])")
compare "over an XLOG_SWITCH" "$SW_START" "$SW_END"

# ---- broken input ------------------------------------------------------------------------
mapfile -t FILES < <(seg_files "$MID_START" "$MID_END" "$PGD/pg_wal")
MUT=$TMP/mut
reset_mut() {
	rm -rf "$MUT"
	mkdir -p "$MUT"
	cp "${FILES[@]}" "$MUT/"
	mapfile -t MFILES < <(seg_files "$MID_START" "$MID_END" "$MUT")
}
scan_mut() {
	run "$DUMP" --seg-size "$SEG" --timeline "${TLI:-1}" --start "$MID_START" --end "${END:-$MID_END}" "$@"
}
expect_error() {
	local name=$1 re=$2
	if [ "$RC" = 1 ] && [ "$(grep -c '' "$ERRF")" = 1 ]; then
		like "$ERR" "$re" "$name"
	else
		ok 1 "$name"
		diag "want exit 1 and one error line matching /$re/"
		_show_result
	fi
}

reset_mut
TLI=2 scan_mut "${MFILES[@]}"
expect_error "the wrong timeline is an error" "^pg-walscan-dump: WAL file 00000002.* page is of timeline 1, expected 2$"

cp "${MFILES[3]}" "${MFILES[2]}"
scan_mut "${MFILES[@]}"
expect_error "a recycled segment in place of another is an error" \
	"^pg-walscan-dump: WAL file $(basename "${FILES[2]}") offset 0 .*: segment $(basename "${FILES[2]}") holds another position: its page here says LSN"

reset_mut
# a byte in the middle of a record that lies within one page, in the third segment
VICTIM=$(lsn_calc 'next(r for r, n in zip(recs, recs[1:]) if r // SEG == recs[0] // SEG + 2 and n - r > 200 and n // 8192 == r // 8192)')
flip_byte "${MFILES[$(lsn_calc "$VICTIM // SEG - lsn('$MID_START') // SEG")]}" $((VICTIM % SEG + 100))
scan_mut "${MFILES[@]}"
expect_error "a flipped byte in a record is a CRC error" \
	"^pg-walscan-dump: WAL file .* \(LSN $(lsn_calc "fmt($VICTIM)")\): record of [0-9]+ bytes has CRC [0-9A-F]+, its header says [0-9A-F]+ \(corrupt WAL\)$"

reset_mut
LASTF=${MFILES[${#MFILES[@]} - 1]}
truncate -s $(($(lsn_calc "lsn('$MID_END') % SEG") - 200)) "$LASTF"
scan_mut "${MFILES[@]}"
expect_error "a last segment truncated before the end LSN is an error" \
	"the data of segment $(basename "$LASTF") ends at offset [0-9]+, before end LSN $MID_END"

reset_mut
# zeros from a record start on, as in a segment PostgreSQL had not written yet
ZERO_AT=$(lsn_calc "next(r for r in reversed(recs) if r < lsn('$MID_END') - 5000) % SEG")
"$PYTHON" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(bytes(1048576 - int(sys.argv[2])))' \
	"$LASTF" "$ZERO_AT"
scan_mut "${MFILES[@]}"
expect_error "WAL ending (zeros) before the end LSN is an error" \
	"no record here \(zeros\): the WAL ends before end LSN $MID_END$"

reset_mut
scan_mut "${MFILES[@]:0:${#MFILES[@]}-1}"
expect_error "a missing last segment is an error" \
	"the WAL given ends at LSN .*, before end LSN $MID_END \(WAL file $(basename "$LASTF") is missing\)$"

# ---- speed ---------------------------------------------------------------------------------
t0=$(date +%s%N)
run "$DUMP" --seg-size "$SEG" --timeline 1 --start "$MID_START" --end "$MID_END" "${FILES[@]}"
t1=$(date +%s%N)
ok "$RC" "the whole range scans again"
diag "scanned ${#FILES[@]} MiB in $(((t1 - t0) / 1000000)) ms (with printing $(grep -c '' "$OUTF") lines)"

done_testing
