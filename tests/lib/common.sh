# tests/lib/common.sh - shared helpers for starting real servers in tests.
#
# Each server has a file tests/lib/<server>.sh, sourced by integration tests,
# that defines:
#   <server>_install        idempotent; installs the server (apt-get, or
#                           `go install`/pip at a pinned version into
#                           $CAIRN_TOOLS). tests/run calls it before make check.
#   <server>_start DIR      starts it on a free loopback port with its files in
#                           DIR, waits until it answers, exports its address;
#                           returns non-zero (after printing why) if it failed.
#   <server>_stop           stops it (also run from the test's EXIT trap).
# A test whose server failed to start reports "not ok" and fails: never skip.

# Where pinned tools built by `go install` or pip live (git-ignored).
CAIRN_TOOLS=${CAIRN_TOOLS:-${CAIRN_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/tests/.cache}
export CAIRN_TOOLS

# free_port: prints a TCP port nothing listens on (loopback).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS]: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
	local port=$1 limit=${2:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "# nothing listens on 127.0.0.1:$port after ${limit}s" >&2
	return 1
}

# apt_install PKG...: installs the packages dpkg does not have (root only).
apt_install() {
	local missing="" p
	for p in "$@"; do
		dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ -z "${CAIRN_APT_UPDATED:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || return 1
		export CAIRN_APT_UPDATED=1
	fi
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# go_install MODULE@VERSION BINARY: builds a pinned Go tool into $CAIRN_TOOLS/bin.
go_install() {
	local module=$1 binary=$2
	[ -x "$CAIRN_TOOLS/bin/$binary" ] && return 0
	mkdir -p "$CAIRN_TOOLS/bin" "$CAIRN_TOOLS/go"
	GOPATH="$CAIRN_TOOLS/go" GOBIN="$CAIRN_TOOLS/bin" GOFLAGS=-modcacherw go install "$module"
}
