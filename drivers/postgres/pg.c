/*
 * pg.c - the PostgreSQL driver: registration, settings, libpq and WAL-name
 * helpers shared by backup.c, restore.c and wal.c (see pg.h).
 */
#include "pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pg_out_of_memory(const cairn_host *host)
{
	return host->error(CAIRN_ENOMEM, "out of memory in driver pg");
}

/* Same errno mapping as the core and the reference plugins. */
int pg_syscall_error(const cairn_host *host, int err, const char *action, const char *path)
{
	int code = CAIRN_EIO;

	if (err == EACCES || err == EPERM)
		code = CAIRN_EAUTH;
	else if (err == ENOMEM)
		code = CAIRN_ENOMEM;
	return host->error(code, "cannot %s %s: %s", action, path, strerror(err));
}

/* libpq messages end with a newline and may have several lines: keep the first. */
static void pg_first_line(const char *msg, char *out, size_t len)
{
	size_t n = strcspn(msg, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
}

int pg_connect(const cairn_host *host, const char *dbname, PGconn **out)
{
	const char *conninfo = host->config_get("conninfo");
	const char *keys[4], *values[4];
	char why[512];
	PGconn *conn;
	int n = 0;

	*out = NULL;
	/* The conninfo is expanded first; a later dbname overrides its database. */
	keys[n] = "dbname";
	values[n++] = conninfo ? conninfo : "";
	if (dbname) {
		keys[n] = "dbname";
		values[n++] = dbname;
	}
	keys[n] = "application_name";
	values[n++] = "cairn";
	keys[n] = NULL;
	values[n] = NULL;
	conn = PQconnectdbParams(keys, values, 1);
	if (!conn)
		return pg_out_of_memory(host);
	if (PQstatus(conn) != CONNECTION_OK) {
		pg_first_line(PQerrorMessage(conn), why, sizeof(why));
		PQfinish(conn);
		/* Plugins have no hint line: the remedy ends the message. */
		return host->error(CAIRN_ENETWORK,
		                   "cannot connect to PostgreSQL: %s (is the server running? "
		                   "check PGHOST, PGPORT, PGUSER or --conninfo)",
		                   why);
	}
	*out = conn;
	return 0;
}

int pg_query(const cairn_host *host, PGconn *conn, const char *sql, int want_tuples,
             PGresult **out)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char why[512];

	*out = NULL;
	if (st == (want_tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK) ||
	    (!want_tuples && st == PGRES_TUPLES_OK)) {
		*out = res;
		return 0;
	}
	pg_first_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), why, sizeof(why));
	PQclear(res);
	return host->error(CAIRN_ERROR, "query on PostgreSQL failed: %s", why);
}

int pg_is_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

int pg_parse_lsn(const char *text, uint64_t *out)
{
	unsigned int hi, lo;
	int used = 0;

	if (!text || sscanf(text, "%X/%X%n", &hi, &lo, &used) != 2 || text[used] != '\0')
		return -1;
	*out = ((uint64_t)hi << 32) | lo;
	return 0;
}

void pg_format_lsn(uint64_t lsn, char *out, size_t len)
{
	snprintf(out, len, "%X/%X", (unsigned int)(lsn >> 32), (unsigned int)lsn);
}

/*
 * A segment name is the timeline, then the segment number split into a "log"
 * part and a "seg" part of 0x100000000 / segment size segments, in hex.
 */
void pg_segment_name(uint32_t timeline, uint64_t segno, uint64_t seg_size, char out[25])
{
	uint64_t per = UINT64_C(0x100000000) / seg_size;

	snprintf(out, 25, "%08X%08X%08X", timeline, (unsigned int)(segno / per),
	         (unsigned int)(segno % per));
}

int pg_parse_segment_name(const char *name, uint32_t *timeline, uint64_t *segno,
                          uint64_t seg_size)
{
	unsigned int tli, log, seg;

	if (strlen(name) < 24 || !pg_is_hex(name, 24) ||
	    sscanf(name, "%8X%8X%8X", &tli, &log, &seg) != 3)
		return -1;
	*timeline = tli;
	*segno = (uint64_t)log * (UINT64_C(0x100000000) / seg_size) + seg;
	return 0;
}

int pg_log_name(const cairn_host *host, const char *file, char *out, size_t len)
{
	size_t n = strlen(file), i;

	for (i = 0; i < n; i++)
		if (!((file[i] >= '0' && file[i] <= '9') || (file[i] >= 'A' && file[i] <= 'Z') ||
		      (file[i] >= 'a' && file[i] <= 'z') || file[i] == '.' || file[i] == '_' ||
		      file[i] == '-'))
			break;
	if (i == n && n < 64) {
		/* 000000010000000000000003, .partial, .00000028.backup */
		if (n >= 24 && pg_is_hex(file, 24) && (n == 24 || file[24] == '.')) {
			snprintf(out, len, "wal/%.8s/%s", file, file);
			return 0;
		}
		if (n == 16 && pg_is_hex(file, 8) && strcmp(file + 8, ".history") == 0) {
			snprintf(out, len, "timelines/%s", file);
			return 0;
		}
	}
	return host->error(CAIRN_EINVALID, "'%s' is not the name of a WAL file", file);
}

/* ---- registration ------------------------------------------------------- */

static const cairn_setting pg_settings[] = {
    {"pgdata", CAIRN_SETTING_STRING, NULL, "CAIRN_PGDATA PGDATA",
     "data directory of the server being backed up (default of backup-push's argument)", 0},
    {"conninfo", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_CONNINFO",
     "libpq connection string; PGHOST, PGPORT, PGUSER ... apply too (passwords: PGPASSWORD "
     "or ~/.pgpass)",
     0},
    {"block-size", CAIRN_SETTING_SIZE, "128K", "CAIRN_PG_BLOCK_SIZE",
     "block size of relation files (a multiple of the page size): what a backup stores of a "
     "changed relation",
     0},
    {"until", CAIRN_SETTING_STRING, NULL, "CAIRN_UNTIL",
     "backup-fetch: recover up to this time (recovery_target_time)", 0},
    {"target-lsn", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_TARGET_LSN",
     "backup-fetch: recover up to this LSN (recovery_target_lsn)", 0},
    {"target-name", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_TARGET_NAME",
     "backup-fetch: recover up to this restore point (recovery_target_name)", 0},
    {"immediate", CAIRN_SETTING_BOOL, "false", "CAIRN_PG_IMMEDIATE",
     "backup-fetch: recover only until the backup is consistent (recovery_target = "
     "'immediate')",
     0},
    {"recovery", CAIRN_SETTING_BOOL, "false", "CAIRN_PG_RECOVERY",
     "backup-fetch: write recovery.signal and restore_command, recover to the end of the WAL",
     0},
    {"target-timeline", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_TARGET_TIMELINE",
     "backup-fetch: recovery_target_timeline (PostgreSQL's default: latest)", 0},
    {"target-action", CAIRN_SETTING_STRING, "promote", "CAIRN_PG_TARGET_ACTION",
     "backup-fetch: recovery_target_action when a target is reached (pause, promote, shutdown)",
     0},
    {"restore-only", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_RESTORE_ONLY",
     "backup-fetch: only these databases or tables get their data back (db[,db/table,...])",
     0},
    {"tablespace-map", CAIRN_SETTING_STRING, NULL, "CAIRN_PG_TABLESPACE_MAP",
     "backup-fetch: restore tablespaces elsewhere: OLD=NEW[,OLD=NEW...] (OLD: OID, name or "
     "path)",
     0},
    {"prefetch", CAIRN_SETTING_INT, "0", "CAIRN_PG_PREFETCH WALG_DOWNLOAD_CONCURRENCY",
     "wal-fetch: also fetch this many following segments in the background", 0},
    {"archive-wait", CAIRN_SETTING_INT, "60", "CAIRN_PG_ARCHIVE_WAIT",
     "backup-push: seconds to wait for the backup's WAL to reach the repository", 0},
    {NULL, 0, NULL, NULL, NULL, 0},
};

static const cairn_command pg_commands[] = {
    {"wal-push", "PATH", "archive one WAL file (archive_command = 'cairn pg wal-push %p')",
     pg_cmd_wal_push},
    {"wal-fetch", "NAME DEST",
     "restore one WAL file (restore_command = 'cairn pg wal-fetch %f %p'); exit 3 if missing",
     pg_cmd_wal_fetch},
    {"wal-verify", "", "check that WAL is continuous from the oldest backup to the newest segment",
     pg_cmd_wal_verify},
    {NULL, NULL, NULL, NULL},
};

static const char *const pg_aliases[] = {"postgres", NULL};

static const cairn_driver_plugin pg_plugin = {
    .version = CAIRN_ABI_VERSION,
    .name = "pg",
    .aliases = pg_aliases,
    .plugin_version = "1.0.0",
    .description = "PostgreSQL: base backups, WAL archiving, point-in-time and partial restore",
    .caps = CAIRN_DRIVER_CAP_RESTORE_OVER,
    .settings = pg_settings,
    .backup_usage = "[PGDATA]",
    .restore_usage = "DEST NAME|LATEST",
    .backup = pg_backup,
    .restore = pg_restore,
    .commands = pg_commands,
    .prune_logs = pg_prune_logs,
};

/* The only exported symbol: registers and does nothing else. */
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_driver(&pg_plugin);
}
