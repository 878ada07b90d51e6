# shellcheck shell=bash
# shellcheck disable=SC2034 # RC, OUT, ERR, PUSHED, ... are for the tests that source this
# tests/integration/lib.sh - helpers shared by the integration tests.
#
# Every tests/integration/*.sh sources this file and prints TAP on stdout
# (automake's tap-driver.sh reads it; stderr goes to the test's .log only).
#
# Environment (set by `make check`, see AM_TESTS_ENVIRONMENT in Makefile.am):
#   CAIRN             the cairn binary to test (required)
#   CAIRN_SRCDIR      the source tree; CAIRN_BUILDDIR the build tree
#   CAIRN_PLUGIN_DIR  the folder(s) of the plugins built with it
# Knobs:
#   KEEP_TMP=1              keep the test's temporary folder (its path is printed)
#   CAIRN_TEST_TIMEOUT=SEC  limit of one cairn command run through `cairn`/`run` (600)
#   TMPDIR                  where the temporary folder goes (/tmp)
#
# TAP:      ok STATUS NAME...          passes when STATUS is 0: `cmd; ok $? "name"`
#           check NAME CMD...          runs CMD (see run), passes when it exits 0
#           is GOT WANT NAME...        string equality (a diff on failure)
#           isnt GOT UNWANTED NAME...
#           like GOT ERE NAME...       / unlike: extended regex, any line
#           cmp_ok A OP B NAME...      integers; OP: -lt -le -eq -ne -ge -gt
#           between X LO HI NAME...    integers, LO <= X <= HI
#           expect_fail [-c CODE] NAME CMD...
#                                      CMD fails (with exit CODE), and its stderr is
#                                      one line "cairn: ..." (plus optionally one
#                                      line "hint: ...")
#           diag MSG...  diag_file FILE [LINES]  done_testing
#           Never call these inside $(...) or a pipeline: the counters would
#           be lost in the subshell.
# Running:  run CMD...   runs CMD with stdout/stderr into files; sets RC, OUT,
#                        ERR (text, first 64 KiB), OUTF, ERRF (the files)
#           cairn ARGS...  "$CAIRN" ARGS with CAIRN_REPO="$REPO"
#           push_ok NAME SRC [ARGS...]   backup-push that must succeed and print
#                                        one valid backup name; sets PUSHED
#           fetch_ok NAME BACKUP DEST [ARGS...]
#           backup_names   prints the names of `cairn backup-list --json`, oldest first
# Data:     make_tree DIR [SIZE_MB] [SEED]   deterministic mixed tree
#                        (TREE_COMPRESSIBLE_PCT: share of compressible data, 30)
#           tree_digest [--no-root] DIR      sorted listing; equal iff trees equal
#           same_tree DIGEST_FILE DIR NAME... [--no-root as first argument]
#           rand_file PATH BYTES SEED; overwrite_random PATH OFFSET BYTES SEED;
#           insert_random PATH OFFSET BYTES SEED; flip_byte PATH OFFSET
#           repo_bytes DIR   sum of the sizes of the stored objects (no locks)
#           json_get EXPR    evaluates a Python expression on `d`, the JSON on stdin

set -u
export LC_ALL=C

# ---- TAP ------------------------------------------------------------------

_tap_n=0
_tap_failed=0

# One test point. Names lose '#' (a TAP directive) and newlines.
ok() {
	local status=$1 name
	shift
	name=$*
	name=${name//#/no.}
	name=${name//$'\n'/ }
	_tap_n=$((_tap_n + 1))
	if [ "$status" = 0 ]; then
		printf 'ok %d - %s\n' "$_tap_n" "$name"
		return 0
	fi
	printf 'not ok %d - %s\n' "$_tap_n" "$name"
	_tap_failed=$((_tap_failed + 1))
	return 1
}

diag() {
	local line
	while IFS= read -r line; do
		printf '# %s\n' "$line"
	done <<<"$*"
}

# diag_file FILE [LINES]: the last LINES (20) lines of FILE as diagnostics.
diag_file() {
	local f=$1 n=${2:-20} line
	[ -s "$f" ] || return 0
	while IFS= read -r line; do
		printf '#   %s\n' "$line"
	done < <(tail -n "$n" "$f" | cut -c1-400 | tr -d '\000')
}

is() {
	local got=$1 want=$2
	shift 2
	if [ "$got" = "$want" ]; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	if [[ $got == *$'\n'* || $want == *$'\n'* ]]; then
		diag "diff want got:"
		diag "$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | head -n 40)"
	else
		diag "got:  '${got:0:2000}'"
		diag "want: '${want:0:2000}'"
	fi
	return 1
}

isnt() {
	local got=$1 bad=$2
	shift 2
	if [ "$got" != "$bad" ]; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "got the unwanted value '${got:0:2000}'"
	return 1
}

like() {
	local got=$1 re=$2
	shift 2
	if [ -z "$re" ]; then
		ok 1 "$@"
		diag "like: empty pattern (a value the test needed is missing)"
		return 1
	fi
	if printf '%s\n' "$got" | grep -Eq -- "$re"; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "'${got:0:2000}'"
	diag "does not match /$re/"
	return 1
}

unlike() {
	local got=$1 re=$2
	shift 2
	if ! printf '%s\n' "$got" | grep -Eq -- "$re"; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "'${got:0:2000}'"
	diag "matches /$re/"
	return 1
}

cmp_ok() {
	local a=$1 op=$2 b=$3
	shift 3
	local int_re='^-?[0-9]+$'
	if [[ $a =~ $int_re && $b =~ $int_re ]] && test "$a" "$op" "$b"; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "want: '$a' $op '$b'"
	return 1
}

# between X LO HI NAME...: integer X with LO <= X <= HI
between() {
	local x=$1 lo=$2 hi=$3 int_re='^-?[0-9]+$'
	shift 3
	if [[ $x =~ $int_re && $lo =~ $int_re && $hi =~ $int_re ]] && [ "$x" -ge "$lo" ] && [ "$x" -le "$hi" ]; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "want: $lo <= '$x' <= $hi"
	return 1
}

_done=0
done_testing() {
	_done=1
	if [ "$_tap_n" -eq 0 ]; then
		ok 1 "the test ran at least one check"
	fi
	printf '1..%d\n' "$_tap_n"
	if [ "$_tap_failed" -gt 0 ]; then
		diag "$_tap_failed of $_tap_n checks failed"
		exit 1
	fi
	exit 0
}

# ---- temporary folder, clean environment ----------------------------------

_test_name=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cairn-$_test_name.XXXXXX") || {
	echo "not ok 1 - create a temporary folder under ${TMPDIR:-/tmp}"
	echo "1..1"
	exit 1
}
REPO=$TMP/repo
BG_PIDS=()

_cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "# KEEP_TMP=1: kept $TMP"
	else
		chmod -R u+rwX "$TMP" 2>/dev/null
		rm -rf "$TMP"
	fi
}
trap _cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Settings of the caller's environment must not change what is tested.
unset CAIRN_REPO CAIRN_COMPRESSION CAIRN_ENCRYPTION_KEY_FILE \
	CAIRN_ENCRYPTION_PASSPHRASE CAIRN_UPLOAD_CONCURRENCY WALG_COMPRESSION_METHOD \
	WALG_UPLOAD_CONCURRENCY
# Nor may a system-wide /etc/cairn/cairn.conf, or caches in the home folder.
: >"$TMP/empty.conf"
export CAIRN_CONFIG="$TMP/empty.conf"
mkdir -p "$TMP/home"
export HOME="$TMP/home"
export XDG_CACHE_HOME="$TMP/home/.cache" XDG_CONFIG_HOME="$TMP/home/.config"

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

CAIRN_TEST_TIMEOUT=${CAIRN_TEST_TIMEOUT:-600}
CAIRN_SRCDIR=${CAIRN_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

if [ -z "${CAIRN:-}" ] || [ ! -f "$CAIRN" ] || [ ! -x "$CAIRN" ]; then
	ok 1 "CAIRN is set to an executable cairn binary (CAIRN='${CAIRN:-}'; run through make check)"
	done_testing
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 6))' 2>/dev/null; then
	ok 1 "python3 (>= 3.6) is available for the test helpers"
	done_testing
fi

# bg_forget PID: PID was waited for; the cleanup must not kill it (or a
# process that got its number later).
bg_forget() {
	local p keep=()
	for p in "${BG_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	BG_PIDS=("${keep[@]}")
}

# ---- running commands -----------------------------------------------------

_run_seq=0
# run CMD...: stdout/stderr into files; RC, OUT, ERR, OUTF, ERRF describe the result.
run() {
	_run_seq=$((_run_seq + 1))
	OUTF=$TMP/.run.out
	ERRF=$TMP/.run.err
	"$@" >"$OUTF" 2>"$ERRF"
	RC=$?
	OUT=$(head -c 65536 "$OUTF" | tr -d '\000')
	ERR=$(head -c 65536 "$ERRF" | tr -d '\000')
	if [ "$RC" = 124 ]; then
		diag "command timed out after ${CAIRN_TEST_TIMEOUT}s: $*"
	fi
	return "$RC"
}

# cairn ARGS...: the binary under test on the test's repository.
cairn() {
	CAIRN_REPO="$REPO" timeout -k 10 "$CAIRN_TEST_TIMEOUT" "$CAIRN" "$@"
}

# Like cairn but without a repository in the environment.
cairn_norepo() {
	timeout -k 10 "$CAIRN_TEST_TIMEOUT" "$CAIRN" "$@"
}

_show_result() {
	diag "exit status $RC"
	if [ -s "$ERRF" ]; then
		diag "stderr:"
		diag_file "$ERRF" 15
	fi
	if [ -s "$OUTF" ]; then
		diag "stdout:"
		diag_file "$OUTF" 10
	fi
}

# check NAME CMD...: CMD must exit 0.
check() {
	local name=$1
	shift
	run "$@"
	if [ "$RC" = 0 ]; then
		ok 0 "$name"
		return 0
	fi
	ok 1 "$name"
	diag "command: $*"
	_show_result
	return 1
}

# expect_fail [-c CODE] NAME CMD...: CMD must fail (with CODE) with one error line.
expect_fail() {
	local code="" name problems="" first n second
	if [ "$1" = -c ]; then
		code=$2
		shift 2
	fi
	name=$1
	shift
	run "$@"
	if [ "$RC" = 0 ]; then
		problems+="it succeeded; "
	elif [ -n "$code" ] && [ "$RC" != "$code" ]; then
		problems+="exit status $RC, want $code; "
	fi
	n=$(grep -c '' "$ERRF")
	first=$(head -n 1 "$ERRF")
	second=$(sed -n 2p "$ERRF")
	if [ "$n" -eq 0 ]; then
		problems+="nothing on stderr; "
	else
		case $first in
		"cairn: "?*) ;;
		*) problems+="stderr does not start with 'cairn: '; " ;;
		esac
		if [ "$n" -gt 2 ] || { [ "$n" -eq 2 ] && [[ $second != "hint: "* ]]; }; then
			problems+="stderr has $n lines, want one error line (and at most one 'hint: ' line); "
		fi
	fi
	if [ -z "$problems" ]; then
		ok 0 "$name"
		return 0
	fi
	ok 1 "$name"
	diag "command: $*"
	diag "${problems%; }"
	_show_result
	return 1
}

BACKUP_NAME_RE='^[a-z][a-z0-9]*-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$'

# push_ok NAME SRC [ARGS...]: `cairn dir backup-push SRC ARGS` must succeed and
# print exactly one line, a backup name; sets PUSHED (empty on failure).
push_ok() {
	local name=$1 src=$2
	shift 2
	PUSHED=""
	run cairn dir backup-push "$src" "$@"
	if [ "$RC" = 0 ] && [ "$(grep -c '' "$OUTF")" = 1 ] && [[ $OUT =~ $BACKUP_NAME_RE ]]; then
		PUSHED=$OUT
		ok 0 "$name"
		return 0
	fi
	ok 1 "$name"
	diag "want exit 0 and one line on stdout, a backup name like dir-20261126T183012Z"
	_show_result
	return 1
}

# fetch_ok NAME BACKUP DEST [ARGS...]
fetch_ok() {
	local name=$1 backup=$2 dest=$3
	shift 3
	check "$name" cairn dir backup-fetch "$dest" "$backup" "$@"
}

# backup_names: names from `cairn backup-list --json`, one a line; exit status
# non-zero when the listing fails or is not a JSON array.
backup_names() {
	local out
	out=$(cairn backup-list --json) || return 1
	printf '%s\n' "$out" | json_get '"\n".join(b["name"] for b in d) if isinstance(d, list) else sys.exit(3)' |
		sed '/^$/d'
	return "${PIPESTATUS[1]}"
}

# json_get EXPR: prints EXPR evaluated on d = the JSON read from stdin
# (objects and lists as JSON, strings bare, None as "None"); exit 1 on bad JSON.
json_get() {
	"$PYTHON" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception as e:
    sys.stderr.write("not JSON: %s\n" % e)
    sys.exit(1)
try:
    v = eval(sys.argv[1])
except Exception as e:
    sys.stderr.write("%s: %r\n" % (sys.argv[1], e))
    sys.exit(2)
if isinstance(v, (dict, list)):
    print(json.dumps(v))
elif isinstance(v, bool):
    print("true" if v else "false")
else:
    print(v)
' "$1"
}

# ---- data -----------------------------------------------------------------

# A string that occurs in every tree of make_tree (in a small text file).
TREE_MARKER='cairn-plaintext-marker-5c1e7a9d'

_MAKE_TREE_PY='
import os, sys, random, stat

root = sys.argv[1]
total = int(float(sys.argv[2]) * 1048576)
seed = int(sys.argv[3])
comp_pct = int(sys.argv[4])
marker = sys.argv[5]
rnd = random.Random(seed)

W = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
     "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
     "xray yankee zulu backup restore chunk pack index manifest catalog storage "
     "driver plugin engine repository verify delete retain compress encrypt "
     "postgres mysql mongo redis wal binlog oplog segment page tuple block "
     "column table schema query cursor commit rollback vacuum replica primary "
     "snapshot archive stream frame nonce cipher digest offset length").split()
assert len(W) >= 64
LV = ("INFO", "WARN", "DEBUG", "ERROR")

def randbytes(n):
    return rnd.getrandbits(n * 8).to_bytes(n, "little") if n else b""

def prose(n):
    out = []
    size = 0
    while size < n:
        r = rnd.getrandbits(60)
        line = " ".join(W[(r >> (6 * k)) & 63] for k in range(10)) + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n].encode()

def logtext(n):
    out = []
    size = 0
    while size < n:
        r = rnd.getrandbits(64)
        line = ("2024-%02d-%02d %02d:%02d:%02d %s req=%08x user=%s path=/%s/%s ms=%d\n" % (
            1 + r % 12, 1 + (r >> 4) % 28, (r >> 9) % 24, (r >> 14) % 60, (r >> 20) % 60,
            LV[(r >> 26) & 3], (r >> 28) & 0xffffffff, W[(r >> 40) & 63],
            W[(r >> 46) & 63], W[(r >> 52) & 63], r >> 58))
        out.append(line)
        size += len(line)
    return "".join(out)[:n].encode()

def write(rel, data, mode=0o644):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    return len(data)

def write_random(rel, n):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        left = n
        while left:
            k = min(left, 1 << 20)
            f.write(randbytes(k))
            left -= k
    os.chmod(p, 0o644)
    return n

os.makedirs(root, exist_ok=True)
used = 0

# many small text files in nested folders
nsmall = min(1500, 100 + int(total / 1048576 * 6))
dirs = ["docs/d%02d" % i for i in range(10)] + [
    "nested/a", "nested/a/b", "nested/a/b/c", "nested/a/b/c/d", "nested/a/b/c/d/e",
    "nested/x/y", "emptydir"]
for d in dirs:
    os.makedirs(os.path.join(root, d), exist_ok=True)
for i in range(nsmall):
    d = dirs[i % (len(dirs) - 1)]
    used += write("%s/f%04d.txt" % (d, i), prose(20 + rnd.getrandbits(12)))
used += write("docs/marker.txt", ("%s\n" % marker).encode() + prose(300))

# special entries
used += write("empty.txt", b"")
used += write("with space \u00fc \u00f1 \u65e5\u672c.txt", prose(1000))
used += write(".hidden", prose(100))
used += write("perm/mode0600.txt", prose(500), 0o600)
used += write("perm/script.sh", b"#!/bin/sh\necho hello\n", 0o755)
used += write("perm/readonly.txt", prose(700), 0o444)
used += write("perm/private/secret.txt", prose(200), 0o600)
os.chmod(os.path.join(root, "perm/private"), 0o700)
os.symlink("docs/d00/f0000.txt", os.path.join(root, "link-file"))
os.symlink("no/such/target", os.path.join(root, "dangling"))
os.symlink("nested/a", os.path.join(root, "link-dir"))

# larger files: compressible logs and incompressible random data
left = max(0, total - used)
comp = left * comp_pct // 100
rand = left - comp
i = 0
while comp > 0:
    n = min(comp, rnd.randint(64 << 10, 4 << 20))
    write("data/text/log-%02d.txt" % i, logtext(n))
    comp -= n
    i += 1
i = 0
while rand > 0:
    n = min(rand, rnd.randint(64 << 10, 8 << 20))
    write_random("data/bin/blob-%02d.bin" % i, n)
    rand -= n
    i += 1

# modes and distinct mtimes (with nanoseconds), children before parents
paths = []
for d, dn, fn in os.walk(root):
    for n in dn + fn:
        paths.append(os.path.join(d, n))
paths.sort(key=lambda p: (-p.count(os.sep), p))
for p in paths:
    st = os.lstat(p)
    if stat.S_ISDIR(st.st_mode) and p != os.path.join(root, "perm/private"):
        os.chmod(p, 0o755)
paths.append(root)
os.chmod(root, 0o755)
base = 1500000000 + (seed % 1000) * 3600
for i, p in enumerate(paths):
    t = (base + i * 86401) * 10**9 + (i * 7919 + 1) % 10**9
    os.utime(p, ns=(t, t), follow_symlinks=False)
'

# make_tree DIR [SIZE_MB] [SEED]: a deterministic tree of about SIZE_MB (10) MiB.
make_tree() {
	"$PYTHON" -c "$_MAKE_TREE_PY" "$1" "${2:-10}" "${3:-1}" "${TREE_COMPRESSIBLE_PCT:-30}" "$TREE_MARKER"
}

_TREE_DIGEST_PY='
import os, sys, stat, hashlib

root = os.fsencode(sys.argv[1])
noroot = sys.argv[2] == "1"
out = []

def entry(rel, p):
    st = os.lstat(p)
    m = st.st_mode
    size = target = digest = b"-"
    if stat.S_ISREG(m):
        t = b"file"
        size = b"%d" % st.st_size
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest().encode()
    elif stat.S_ISDIR(m):
        t = b"dir"
    elif stat.S_ISLNK(m):
        t = b"symlink"
        target = os.readlink(p)
    else:
        t = b"other-%o" % stat.S_IFMT(m)
    ns = st.st_mtime_ns
    mtime = b"%d.%09d" % (ns // 10**9, ns % 10**9)
    out.append(b"\t".join([rel, t, b"%04o" % stat.S_IMODE(m), mtime, size, target, digest]))

if not os.path.isdir(root) or os.path.islink(root):
    sys.stderr.write("tree_digest: not a folder: %s\n" % sys.argv[1])
    sys.exit(1)
if not noroot:
    entry(b".", root)
for d, dn, fn in os.walk(root):
    for n in dn + fn:
        p = os.path.join(d, n)
        entry(os.path.relpath(p, root), p)
out.sort()
sys.stdout.buffer.write(b"".join(l + b"\n" for l in out))
'

# tree_digest [--no-root] DIR: path, type, mode, mtime.ns, size, link target,
# sha256 of every entry, sorted (--no-root: without the line of DIR itself).
tree_digest() {
	local noroot=0
	if [ "$1" = --no-root ]; then
		noroot=1
		shift
	fi
	"$PYTHON" -c "$_TREE_DIGEST_PY" "$1" "$noroot"
}

# same_tree [--no-root] DIGEST_FILE DIR NAME...: DIR's digest equals the saved one.
same_tree() {
	local opt=() want got
	if [ "$1" = --no-root ]; then
		opt=(--no-root)
		shift
	fi
	want=$1
	got=$TMP/.digest.got
	shift
	local dir=$1
	shift
	if tree_digest "${opt[@]}" "$dir" >"$got" && cmp -s "$want" "$got"; then
		ok 0 "$@"
		return 0
	fi
	ok 1 "$@"
	diag "tree $dir differs from the original ($(diff "$want" "$got" | grep -c '^[<>]') lines differ); diff want got:"
	diag "$(diff "$want" "$got" | head -n 30)"
	return 1
}

_RAND_PY='
import os, sys, random
op, path = sys.argv[1], sys.argv[2]
rnd = random.Random(int(sys.argv[-1]))
def randbytes(n):
    return rnd.getrandbits(n * 8).to_bytes(n, "little") if n else b""
if op == "new":
    n = int(sys.argv[3])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        while n:
            k = min(n, 1 << 20)
            f.write(randbytes(k))
            n -= k
elif op == "overwrite":
    off, n = int(sys.argv[3]), int(sys.argv[4])
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(randbytes(n))
elif op == "insert":
    off, n = int(sys.argv[3]), int(sys.argv[4])
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:off] + randbytes(n) + data[off:])
elif op == "flip":
    off = int(sys.argv[3])
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        if len(b) != 1:
            sys.exit("flip_byte: offset %d is past the end of %s" % (off, path))
        f.seek(off)
        f.write(bytes([b[0] ^ 0x01]))
'

# rand_file PATH BYTES SEED: a file of BYTES seeded random bytes.
rand_file() { "$PYTHON" -c "$_RAND_PY" new "$1" "$2" "$3"; }
# overwrite_random PATH OFFSET BYTES SEED: overwrite BYTES bytes at OFFSET.
overwrite_random() { "$PYTHON" -c "$_RAND_PY" overwrite "$1" "$2" "$3" "$4"; }
# insert_random PATH OFFSET BYTES SEED: insert BYTES random bytes at OFFSET.
insert_random() { "$PYTHON" -c "$_RAND_PY" insert "$1" "$2" "$3" "$4"; }
# flip_byte PATH OFFSET: flips the lowest bit of the byte at OFFSET.
flip_byte() { "$PYTHON" -c "$_RAND_PY" flip "$1" "$2" 0; }

# repo_bytes DIR: total size of the stored objects below DIR (locks left out).
repo_bytes() {
	find "$1" -type f ! -path '*/locks/*' -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'
}

# file_size PATH
file_size() { stat -c %s "$1"; }
