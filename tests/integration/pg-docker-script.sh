#!/bin/bash
# docker/walkthrough.sh, the entry point of the walkthrough image, run
# outside Docker: its primary role archives and backs up, its restore role
# builds the second server from the repository.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
as_postgres mkdir -p "$PGW/sa" "$PGW/sb"
A_HOST=$PGW/sa A_PORT=$(free_port)
role() {
	as_postgres env PATH="$BIN:$PATH" CAIRN_PLUGIN_DIR="$BIN/plugins" CAIRN_CONFIG="$CAIRN_CONFIG" \
		CAIRN_REPO="$REPO" HOME="$PGW" WALKTHROUGH_DETACH=1 WALKTHROUGH_WAL_WAIT=0 LISTEN= PG_BIN="$PG_BIN" "$@" \
		timeout 300 bash "$CAIRN_SRCDIR/docker/walkthrough.sh" "$ROLE"
}
ROLE=primary run role PGDATA="$PGW/a" PGHOST="$A_HOST" PGPORT="$A_PORT"
ok $? "walkthrough.sh primary" || _show_result
POSTGRES_DIRS+=("$PGW/a")
like "$OUT" "^primary: backup pushed, WAL up to [0-9A-F]{24} archived" "the primary reports its backup and WAL"
is "$(pgc pg backup-list --json | json_get 'len(d)')" "1" "one backup in the repository"

B_HOST=$PGW/sb B_PORT=$(free_port)
ROLE=restore run role PGDATA="$PGW/b" PGHOST="$B_HOST" PGPORT="$B_PORT"
ok $? "walkthrough.sh restore" || _show_result
POSTGRES_DIRS+=("$PGW/b")
like "$OUT" "^seed rows: 20$" "the restored server has the 20 seed rows"
like "$OUT" "^loan_db.contract rows: 5$" "and loan_db.contract"
is "$(qb postgres "SELECT pg_is_in_recovery()")" "f" "it was promoted"

done_testing
