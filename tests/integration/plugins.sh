#!/bin/bash
# plugins.sh - `cairn plugins`, and plugins that must be refused without
# breaking anything: a newer ABI version, ABI version 0, no init symbol, an
# init that fails, a file that is not a shared object.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

# plugins_json_check FILE WHAT ARGS: tolerant reader of `cairn plugins --json`
# (any nesting: records are the objects with "name" and "kind"; failures are
# objects with a reason/error/message and a string naming the file).
#   loaded KIND NAME       a loaded plugin KIND/NAME built for the host's ABI ($HOST_ABI)
#   notloaded NAME         no loaded plugin named NAME
#   failed BASENAME        a failure record naming BASENAME with a non-empty reason
#   reason BASENAME        prints that reason
plugins_json_check() {
	"$PYTHON" -c '
import json, os, sys
f, what = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
d = json.load(open(f))
recs = []
def walk(x):
    if isinstance(x, dict):
        recs.append(x)
        for v in x.values():
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(d)
REASON = ("reason", "error", "message", "why", "problem")
def is_failure(r):
    return any(isinstance(r.get(k), str) and r.get(k) for k in REASON)
def abi(r):
    for k, v in r.items():
        if "abi" in k.lower():
            return str(v)
    return None
def names_file(r, base):
    return any(isinstance(v, str) and v.endswith(base) for v in r.values())
if what == "loaded":
    kind, name = args
    hits = [r for r in recs if r.get("kind") == kind and r.get("name") == name and not is_failure(r)]
    if not hits:
        sys.exit("no loaded %s plugin named %s" % (kind, name))
    want = os.environ["HOST_ABI"]
    if abi(hits[0]) != want:
        sys.exit("%s %s: ABI version %r, want %s" % (kind, name, abi(hits[0]), want))
    if not any(isinstance(v, str) and v.endswith(".so") for v in hits[0].values()):
        sys.exit("%s %s: no file named" % (kind, name))
elif what == "notloaded":
    hits = [r for r in recs if r.get("name") == args[0] and "kind" in r and not is_failure(r)]
    if hits:
        sys.exit("plugin %s is listed as loaded: %r" % (args[0], hits))
elif what in ("failed", "reason"):
    hits = [r for r in recs if names_file(r, args[0]) and is_failure(r)]
    if not hits:
        sys.exit("no failure record names %s" % args[0])
    if what == "reason":
        print(" ".join(str(hits[0].get(k)) for k in REASON if hits[0].get(k)))
' "$@"
}

# ---- the built plugins ----
# The plugins built with this cairn declare the ABI version it reports.
HOST_ABI=$("$CAIRN" version | sed -n 's/.*plugin ABI \([0-9][0-9]*\).*/\1/p')
export HOST_ABI
like "$HOST_ABI" '^[1-9][0-9]*$' "cairn version states its plugin ABI version"
check "cairn plugins exits 0" cairn_norepo plugins
PLAIN=$OUT
like "$PLAIN" 'driver.*(^|[^a-z_])dir([^a-z_]|$)|(^|[^a-z_])dir([^a-z_]|$).*driver' "cairn plugins lists the driver dir"
like "$PLAIN" 'storage.*(^|[^a-z_])fs([^a-z_]|$)|(^|[^a-z_])fs([^a-z_]|$).*storage' "cairn plugins lists the storage fs"
like "$PLAIN" 'driver_dir' "cairn plugins names the file of the dir driver"
check "cairn plugins --json exits 0" cairn_norepo plugins --json
printf '%s' "$OUT" >"$TMP/plugins.json"
run plugins_json_check "$TMP/plugins.json" loaded driver dir
ok "$RC" "--json: driver dir loaded, ABI version $HOST_ABI, file named"
[ "$RC" = 0 ] || diag "$ERR"
run plugins_json_check "$TMP/plugins.json" loaded storage fs
ok "$RC" "--json: storage fs loaded, ABI version $HOST_ABI, file named"
[ "$RC" = 0 ] || diag "$ERR"

# ---- bad plugins ----
BAD=$TMP/bad
mkdir -p "$BAD"
cat >"$TMP/v999.c" <<'EOF'
#include <cairn/plugin.h>
static const cairn_driver_plugin bogus = {
	.version = 999, .name = "bogus999", .plugin_version = "9.9.9",
	.description = "a driver from the future",
};
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_driver(&bogus);
}
EOF
cat >"$TMP/abi0.c" <<'EOF'
#include <cairn/plugin.h>
static const char *const schemes[] = { "bogus0", 0 };
static const cairn_storage_plugin bogus = {
	.version = 0, .name = "bogus0", .plugin_version = "0.0.0",
	.description = "a storage without a version", .schemes = schemes,
};
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_storage(&bogus);
}
EOF
cat >"$TMP/nosym.c" <<'EOF'
int cairn_plugin_start(void);
int cairn_plugin_start(void)
{
	return 0;
}
EOF
cat >"$TMP/initfail.c" <<'EOF'
#include <cairn/plugin.h>
int cairn_plugin_init(const cairn_host *host)
{
	(void)host;
	return -1;
}
EOF
built=0
for p in v999:driver_bogus999 abi0:storage_bogus0 nosym:driver_nosym initfail:driver_initfail; do
	src=${p%%:*}
	so=${p#*:}
	if cc -shared -fPIC -Wall -Werror -I"$CAIRN_SRCDIR/core/include" -o "$BAD/$so.so" "$TMP/$src.c" 2>"$TMP/cc.err"; then
		built=$((built + 1))
	else
		diag "cc $src.c failed:"
		diag_file "$TMP/cc.err"
	fi
done
is "$built" 4 "the four fake plugins compile against core/include"
printf 'this is not a shared object\n' >"$BAD/driver_garbage.so"

export CAIRN_PLUGIN_DIR="${CAIRN_PLUGIN_DIR:+$CAIRN_PLUGIN_DIR:}$BAD"
run cairn_norepo plugins
diag "cairn plugins with bad plugins: exit status $RC"
PLAIN=$OUT$'\n'$ERR
like "$PLAIN" 'driver.*(^|[^a-z_])dir([^a-z_]|$)|(^|[^a-z_])dir([^a-z_]|$).*driver' "with bad plugins: still lists the driver dir"
like "$PLAIN" 'storage.*(^|[^a-z_])fs([^a-z_]|$)|(^|[^a-z_])fs([^a-z_]|$).*storage' "with bad plugins: still lists the storage fs"
for so in driver_bogus999 storage_bogus0 driver_nosym driver_initfail driver_garbage; do
	like "$PLAIN" "$so\\.so" "with bad plugins: names $so.so"
done

run cairn_norepo plugins --json
printf '%s' "$OUT" >"$TMP/plugins-bad.json"
run plugins_json_check "$TMP/plugins-bad.json" loaded driver dir
ok "$RC" "--json with bad plugins: driver dir still loaded"
[ "$RC" = 0 ] || diag "$ERR"
run plugins_json_check "$TMP/plugins-bad.json" loaded storage fs
ok "$RC" "--json with bad plugins: storage fs still loaded"
[ "$RC" = 0 ] || diag "$ERR"
for so in driver_bogus999 storage_bogus0 driver_nosym driver_initfail driver_garbage; do
	run plugins_json_check "$TMP/plugins-bad.json" failed "$so.so"
	ok "$RC" "--json: $so.so is listed as failed, with a reason"
	[ "$RC" = 0 ] || diag "$ERR"
done
for name in bogus999 bogus0; do
	run plugins_json_check "$TMP/plugins-bad.json" notloaded "$name"
	ok "$RC" "--json: the descriptor $name was not accepted"
	[ "$RC" = 0 ] || diag "$ERR"
done
like "$(plugins_json_check "$TMP/plugins-bad.json" reason driver_bogus999.so 2>&1)" '[Vv]ersion|ABI|999' \
	"the reason for driver_bogus999.so speaks of the version"
like "$(plugins_json_check "$TMP/plugins-bad.json" reason storage_bogus0.so 2>&1)" '[Vv]ersion|ABI' \
	"the reason for storage_bogus0.so speaks of the version"
like "$(plugins_json_check "$TMP/plugins-bad.json" reason driver_nosym.so 2>&1)" 'cairn_plugin_init|symbol' \
	"the reason for driver_nosym.so names the missing symbol"

# Backups still work with the bad plugins around.
SRC=$TMP/src
make_tree "$SRC" 2 202
tree_digest "$SRC" >"$TMP/src.dig"
push_ok "backup-push works with bad plugins in CAIRN_PLUGIN_DIR" "$SRC"
fetch_ok "backup-fetch works with bad plugins in CAIRN_PLUGIN_DIR" LATEST "$TMP/restore"
same_tree "$TMP/src.dig" "$TMP/restore" "the restored tree is identical"
run cairn bogus999 backup-push "$SRC"
is "$RC" 2 "the refused driver bogus999 is not an engine (usage error)"
like "$ERR" 'bogus999' "the error names bogus999"

# No plugins at all: a clear error, not a crash.
mkdir -p "$TMP/noplugins"
run env CAIRN_PLUGIN_DIR="$TMP/noplugins" timeout 600 "$CAIRN" plugins
ok "$([ "$RC" -lt 128 ]; echo $?)" "cairn plugins with an empty plugin folder does not crash (exit $RC)"
expect_fail "backup-push without the dir driver fails with one error line" \
	env CAIRN_PLUGIN_DIR="$TMP/noplugins" CAIRN_REPO="$TMP/repo2" timeout 600 "$CAIRN" dir backup-push "$SRC"
like "$ERR" 'dir' "the error names the engine dir"

done_testing
