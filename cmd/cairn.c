/*
 * cairn.c - the command line.
 *
 *   cairn [options] <engine> <command> [args]
 *   cairn-<engine> <command> [args]          (argv[0] dispatch)
 *   cairn [options] backup-list | backup-show | verify | delete | st | plugins | version | help
 *
 * Every setting is also an option (--name value, --name=value, or --name for
 * booleans). Errors are one line "cairn: ..." and maybe a "hint: ..." line;
 * the exit code says what kind of failure it was (see usage_text).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "error.h"
#include "host.h"
#include "log.h"
#include "maintenance.h"
#include "plugins.h"
#include "session.h"
#include "settings.h"
#include "storage.h"
#include "text.h"

enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NOTFOUND = 3,
	EXIT_CORRUPT = 4,
	EXIT_LOCKED = 5,
	EXIT_AUTH = 6,
	EXIT_INTERRUPTED = 130
};

static const char *const known_engines[] = {"dir", "pg", "postgres", "mysql", "mongo", "redis",
                                            NULL};

static const char usage_text[] =
    "usage: cairn [options] <engine> <command> [args]\n"
    "       cairn [options] <command> [args]\n"
    "\n"
    "Engine commands (engine: dir, pg, mysql, mongo, redis, as plugins provide):\n"
    "  backup-push ARGS              take a backup; prints its name\n"
    "  backup-fetch DEST NAME|LATEST restore a backup into DEST (--force to write into a\n"
    "                                non-empty DEST)\n"
    "  backup-list, delete, verify   as below, limited to the engine's backups\n"
    "  (engine-specific commands: see 'cairn help ENGINE')\n"
    "\n"
    "Repository commands:\n"
    "  backup-list [--json]          list backups, oldest first\n"
    "  backup-show NAME [--json]     show one backup\n"
    "  verify [NAME]                 read and check every object (or those NAME needs)\n"
    "  delete retain N               keep the newest N backups, delete the rest\n"
    "  delete before NAME|TIME       delete backups older than NAME or TIME\n"
    "                                (delete is a dry run unless --confirm is given)\n"
    "  st ls [PREFIX] | cat KEY [OFFSET [LENGTH]] | put KEY [FILE] | rm KEY...\n"
    "                                raw storage access, for debugging\n"
    "  plugins [--json]              list plugins and why any failed to load\n"
    "  version | help [config|COMMAND|ENGINE]\n"
    "\n"
    "Options: --repo URL, --config FILE, -v (more output), -q (errors only), --json,\n"
    "and every setting as --name VALUE ('cairn help config' lists them).\n"
    "\n"
    "Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 not found,\n"
    "4 damaged data found, 5 repository locked, 6 wrong key or access denied,\n"
    "130 interrupted.\n";

static void on_signal(int sig)
{
	(void)sig;
	cairn_interrupted = 1;
}

static int exit_code(int error)
{
	switch (error) {
	case 0:
		return EXIT_OK;
	case CAIRN_EINVALID:
		return EXIT_USAGE;
	case CAIRN_ENOTFOUND:
		return EXIT_NOTFOUND;
	case CAIRN_ECORRUPT:
		return EXIT_CORRUPT;
	case CAIRN_ELOCKED:
		return EXIT_LOCKED;
	case CAIRN_EAUTH:
		return EXIT_AUTH;
	case CAIRN_ECANCELED:
		return EXIT_INTERRUPTED;
	default:
		return EXIT_ERROR;
	}
}

static int fail(int error)
{
	const char *msg = cairn_error_message(), *hint = cairn_error_hint_text();

	cairn_progress_end();
	/* A quiet "not found" (wal-fetch of a segment not archived) prints nothing. */
	if (error == CAIRN_ENOTFOUND && !*msg)
		return EXIT_NOTFOUND;
	fprintf(stderr, "cairn: %s\n", *msg ? msg : "failed without a message");
	if (*hint)
		fprintf(stderr, "hint: %s\n", hint);
	return exit_code(error);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cairn_error_vset(CAIRN_EINVALID, fmt, ap);
	va_end(ap);
	if (!*cairn_error_hint_text())
		cairn_error_hint("'cairn help' shows the usage");
	return CAIRN_EINVALID;
}

/* ---- JSON output ---- */

static void json_info(FILE *out, const cairn_backup_info *b)
{
	char start[32], end[32];
	size_t i;

	cairn_format_time(b->start_time, start, sizeof(start));
	cairn_format_time(b->end_time, end, sizeof(end));
	fputs("{\"name\":", out);
	cairn_json_string(out, b->name);
	fputs(",\"engine\":", out);
	cairn_json_string(out, b->engine);
	fputs(",\"source\":", out);
	cairn_json_string(out, cairn_backup_info_meta(b, "source"));
	fprintf(out,
	        ",\"start_time\":\"%s\",\"end_time\":\"%s\",\"size\":%" PRIu64
	        ",\"stored_size\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"chunks\":%" PRIu64
	        ",\"meta\":{",
	        start, end, b->size, b->stored_size, b->entries, b->chunks);
	for (i = 0; i < b->meta_count; i++) {
		if (i)
			fputc(',', out);
		cairn_json_string(out, b->meta[i].key);
		fputc(':', out);
		cairn_json_string(out, b->meta[i].value);
	}
	fputs("}}", out);
}

/* ---- commands ---- */

typedef struct cli {
	int argc;          /* positional arguments after the command */
	char **argv;
	const char *engine; /* NULL for repository commands */
	const cairn_driver_plugin *driver;
	cairn_session *session; /* engine commands only */
} cli;

/* The repository; for engine commands it belongs to the session. */
static int open_repo(cli *c, cairn_repo **out, int create)
{
	if (c->session)
		return cairn_session_repo(c->session, create, out);
	return cairn_repo_open(out, cairn_settings_get("repo"), create);
}

static void close_repo(cli *c, cairn_repo *repo)
{
	if (!c->session)
		cairn_repo_free(repo);
}

static int cmd_backup_push(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_backup_writer *w = NULL;
	cairn_backup_info info;
	char size[32], stored[32];
	int error;

	memset(&info, 0, sizeof(info));
	if ((error = open_repo(c, &repo, 1)) < 0)
		goto done;
	if ((error = cairn_backup_writer_new(&w, repo, c->driver->name)) < 0)
		goto done;
	cairn_backup_writer_set_session(w, c->session);
	cairn_error_clear();
	if ((error = c->driver->backup(cairn_host_get(), w, c->argc, c->argv)) < 0) {
		if (!*cairn_error_message())
			cairn_error_set(error, "driver %s failed without a message", c->driver->name);
		goto done;
	}
	if ((error = cairn_backup_writer_commit(w, &info)) < 0)
		goto done;
	cairn_human_size(info.size, size, sizeof(size));
	cairn_human_size(info.stored_size, stored, sizeof(stored));
	cairn_log(CAIRN_LOG_INFO, "backup %s: %" PRIu64 " entries, %s, %s stored", info.name,
	          info.entries, size, stored);
	printf("%s\n", info.name);
done:
	cairn_backup_writer_free(w);
	cairn_backup_info_free(&info);
	close_repo(c, repo);
	return error;
}

static int cmd_backup_fetch(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_backup_reader *r = NULL;
	char name[CAIRN_NAME_MAX];
	const cairn_backup_info *info;
	int error;

	if (c->argc != 2)
		return usage_error("usage: cairn %s backup-fetch %s", c->driver->name,
		                   c->driver->restore_usage ? c->driver->restore_usage
		                                            : "DEST NAME|LATEST");
	if ((error = open_repo(c, &repo, 0)) < 0)
		goto done;
	if ((error = cairn_backup_resolve(repo, c->driver->name, c->argv[1], name)) < 0)
		goto done;
	if ((error = cairn_backup_reader_open(&r, repo, name)) < 0)
		goto done;
	cairn_backup_reader_set_session(r, c->session);
	info = cairn_backup_reader_info(r);
	if (strcmp(info->engine, c->driver->name) != 0) {
		error = cairn_error_set(CAIRN_EINVALID, "backup %s was taken by engine %s, not %s",
		                        name, info->engine, c->driver->name);
		goto done;
	}
	cairn_error_clear();
	if ((error = c->driver->restore(cairn_host_get(), r, c->argv[0])) < 0) {
		if (!*cairn_error_message())
			cairn_error_set(error, "driver %s failed without a message", c->driver->name);
		goto done;
	}
	if ((error = cairn_backup_reader_finish(r)) < 0)
		goto done;
	cairn_log(CAIRN_LOG_INFO, "restored backup %s into %s", name, c->argv[0]);
done:
	cairn_backup_reader_free(r);
	close_repo(c, repo);
	return error;
}

static int cmd_backup_list(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_backup_info *infos = NULL;
	size_t count = 0, i;
	char end[32], size[32], stored[32];
	int error, json = cairn_settings_get_bool("json");

	if (c->argc != 0)
		return usage_error("usage: cairn backup-list [--json]");
	if ((error = open_repo(c, &repo, 0)) < 0)
		goto done;
	if ((error = cairn_backup_list(repo, c->engine, &infos, &count)) < 0)
		goto done;
	if (json) {
		fputc('[', stdout);
		for (i = 0; i < count; i++) {
			if (i)
				fputc(',', stdout);
			json_info(stdout, &infos[i]);
		}
		fputs("]\n", stdout);
	} else {
		printf("%-34s %-8s %-20s %10s %10s  %s\n", "NAME", "ENGINE", "FINISHED", "SIZE",
		       "STORED", "SOURCE");
		for (i = 0; i < count; i++) {
			const char *src = cairn_backup_info_meta(&infos[i], "source");

			cairn_format_time(infos[i].end_time, end, sizeof(end));
			cairn_human_size(infos[i].size, size, sizeof(size));
			cairn_human_size(infos[i].stored_size, stored, sizeof(stored));
			printf("%-34s %-8s %-20s %10s %10s  %s\n", infos[i].name, infos[i].engine, end,
			       size, stored, src ? src : "-");
		}
	}
done:
	for (i = 0; i < count; i++)
		cairn_backup_info_free(&infos[i]);
	free(infos);
	close_repo(c, repo);
	return error;
}

static int cmd_backup_show(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_backup_info info;
	char name[CAIRN_NAME_MAX], t[32], size[32];
	size_t i;
	int error;

	memset(&info, 0, sizeof(info));
	if (c->argc != 1)
		return usage_error("usage: cairn backup-show NAME|LATEST [--json]");
	if ((error = open_repo(c, &repo, 0)) < 0)
		goto done;
	if ((error = cairn_backup_resolve(repo, c->engine, c->argv[0], name)) < 0 ||
	    (error = cairn_backup_info_load(repo, name, &info)) < 0)
		goto done;
	if (cairn_settings_get_bool("json")) {
		json_info(stdout, &info);
		fputc('\n', stdout);
		goto done;
	}
	printf("name:        %s\nengine:      %s\n", info.name, info.engine);
	cairn_format_time(info.start_time, t, sizeof(t));
	printf("started:     %s\n", t);
	cairn_format_time(info.end_time, t, sizeof(t));
	printf("finished:    %s\n", t);
	cairn_human_size(info.size, size, sizeof(size));
	printf("size:        %s (%" PRIu64 " bytes)\n", size, info.size);
	cairn_human_size(info.stored_size, size, sizeof(size));
	printf("stored:      %s (%" PRIu64 " bytes new in the repository)\n", size, info.stored_size);
	printf("entries:     %" PRIu64 "\nchunks:      %" PRIu64 "\n", info.entries, info.chunks);
	for (i = 0; i < info.meta_count; i++)
		printf("%-12s %s\n", info.meta[i].key, info.meta[i].value);
done:
	cairn_backup_info_free(&info);
	close_repo(c, repo);
	return error;
}

static void print_problem(void *arg, const char *message)
{
	(void)arg;
	cairn_progress_end();
	fprintf(stderr, "cairn: problem: %s\n", message);
}

static int cmd_verify(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_verify_stats stats;
	char name[CAIRN_NAME_MAX], bytes[32];
	int error;

	if (c->argc > 1)
		return usage_error("usage: cairn verify [NAME|LATEST]");
	if ((error = open_repo(c, &repo, 0)) < 0)
		goto done;
	if (c->argc == 1 && (error = cairn_backup_resolve(repo, c->engine, c->argv[0], name)) < 0)
		goto done;
	error = cairn_verify(repo, c->argc ? name : NULL, print_problem, NULL, &stats);
	if (error == 0) {
		cairn_human_size(stats.bytes, bytes, sizeof(bytes));
		printf("verified %s: %" PRIu64 " objects, %" PRIu64 " chunks, %s, no problems\n",
		       c->argc ? name : "repository", stats.objects, stats.chunks, bytes);
	}
done:
	close_repo(c, repo);
	return error;
}

/* Lets each driver (or the one named) drop log segments no backup needs any more. */
static int prune_logs(void *arg)
{
	cli *c = arg;
	const cairn_driver_plugin *d;
	cairn_session *s;
	size_t i;
	int error = 0;

	for (i = 0; error == 0 && (d = cairn_plugins_driver_at(i)); i++) {
		if (d->version < 2 || !d->prune_logs || (c->driver && d != c->driver))
			continue;
		if ((error = cairn_session_new(&s, d->name, cairn_settings_get("repo"))) < 0)
			break;
		cairn_error_clear();
		if ((error = d->prune_logs(cairn_host_get(), s)) < 0 && !*cairn_error_message())
			cairn_error_set(error, "driver %s failed to prune logs without a message", d->name);
		cairn_session_free(s);
	}
	return error;
}

static int cmd_delete(cli *c)
{
	cairn_repo *repo = NULL;
	cairn_gc_stats stats;
	char **names = NULL, freed[32], *end;
	size_t count = 0, i;
	unsigned long long retain = 0;
	cairn_delete_mode mode;
	int error, confirm = cairn_settings_get_bool("confirm");

	if (c->argc == 2 && strcmp(c->argv[0], "retain") == 0) {
		errno = 0;
		retain = strtoull(c->argv[1], &end, 10);
		if (errno || *end || !*c->argv[1] || c->argv[1][0] == '-')
			return usage_error("delete retain: '%s' is not a number", c->argv[1]);
		mode = CAIRN_DELETE_RETAIN;
	} else if (c->argc == 2 && strcmp(c->argv[0], "before") == 0) {
		mode = CAIRN_DELETE_BEFORE;
	} else if (c->argc == 1 && strcmp(c->argv[0], "garbage") == 0) {
		mode = 0;
	} else {
		return usage_error("usage: cairn delete retain N | before NAME|TIME | garbage "
		                   "[--confirm]");
	}
	if ((error = open_repo(c, &repo, 0)) < 0)
		goto done;
	if (mode && (error = cairn_delete_select(repo, c->engine, mode, retain, c->argv[1], &names,
	                                         &count)) < 0)
		goto done;
	if (!confirm) {
		for (i = 0; i < count; i++)
			printf("would delete %s\n", names[i]);
		printf("dry run: %zu backup%s would be deleted; add --confirm to delete\n", count,
		       count == 1 ? "" : "s");
		goto done;
	}
	if ((error = cairn_delete_apply(repo, names, count, &stats, prune_logs, c)) < 0)
		goto done;
	for (i = 0; i < count; i++)
		printf("deleted %s\n", names[i]);
	cairn_human_size(stats.bytes_freed, freed, sizeof(freed));
	printf("deleted %" PRIu64 " backup%s, removed %" PRIu64 " pack%s, freed %s\n",
	       stats.backups_deleted, stats.backups_deleted == 1 ? "" : "s", stats.packs_deleted,
	       stats.packs_deleted == 1 ? "" : "s", freed);
done:
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	close_repo(c, repo);
	return error;
}

static int print_key(void *arg, const char *key, uint64_t size)
{
	(void)arg;
	printf("%s\t%" PRIu64 "\n", key, size);
	return 0;
}

static int stdout_sink(void *arg, const void *data, size_t len)
{
	(void)arg;
	if (fwrite(data, 1, len, stdout) != len)
		return cairn_error_errno(errno, "cannot write to standard output");
	return 0;
}

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno || !*text || *end || *text == '-' ? -1 : 0;
}

static int st_put(cairn_store *s, const char *key, const char *file)
{
	cairn_upload *up = NULL;
	char buf[1 << 16];
	ssize_t n;
	int fd = STDIN_FILENO, error;

	if (file && strcmp(file, "-") != 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return cairn_error_errno(errno, "cannot read %s", file);
	if ((error = cairn_store_upload_begin(s, key, &up)) < 0)
		goto done;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if ((error = cairn_store_upload_write(s, up, key, buf, (size_t)n)) < 0)
			goto done;
	if (n < 0) {
		error = cairn_error_errno(errno, "cannot read %s", file ? file : "standard input");
		goto done;
	}
	error = cairn_store_upload_commit(s, up, key);
	up = NULL;
done:
	cairn_store_upload_abort(s, up);
	if (fd != STDIN_FILENO)
		close(fd);
	return error;
}

static int cmd_st(cli *c)
{
	cairn_store *s = NULL;
	const char *verb = c->argc ? c->argv[0] : "";
	uint64_t offset = 0, length = CAIRN_TO_END;
	int error;

	if ((error = cairn_store_open(&s, cairn_settings_get("repo"))) < 0)
		return error;
	if (strcmp(verb, "ls") == 0 && c->argc <= 2) {
		error = cairn_store_list(s, c->argc == 2 ? c->argv[1] : "", print_key, NULL);
	} else if (strcmp(verb, "cat") == 0 && c->argc >= 2 && c->argc <= 4) {
		if ((c->argc >= 3 && parse_u64(c->argv[2], &offset) < 0) ||
		    (c->argc == 4 && parse_u64(c->argv[3], &length) < 0))
			error = usage_error("st cat: OFFSET and LENGTH are byte counts");
		else
			error = cairn_store_get_sink(s, c->argv[1], offset, length, stdout_sink, NULL);
		if (error == 0 && fflush(stdout) != 0)
			error = cairn_error_errno(errno, "cannot write to standard output");
	} else if (strcmp(verb, "put") == 0 && (c->argc == 2 || c->argc == 3)) {
		error = st_put(s, c->argv[1], c->argc == 3 ? c->argv[2] : NULL);
	} else if (strcmp(verb, "rm") == 0 && c->argc >= 2) {
		error = cairn_store_remove(s, (const char *const *)c->argv + 1, (size_t)c->argc - 1);
	} else {
		error = usage_error(
		    "usage: cairn st ls [PREFIX] | cat KEY [OFFSET [LENGTH]] | put KEY [FILE] | rm KEY...");
	}
	cairn_store_close(s);
	return error;
}

static int cmd_plugins(cli *c)
{
	if (c->argc)
		return usage_error("usage: cairn plugins [--json]");
	cairn_plugins_report(stdout, cairn_settings_get_bool("json"));
	return 0;
}

static void engine_help(const cairn_driver_plugin *d)
{
	const cairn_command *cmd;

	printf("cairn %s: %s\n\n", d->name, d->description ? d->description : "");
	printf("  cairn %s backup-push %s\n", d->name, d->backup_usage ? d->backup_usage : "");
	printf("  cairn %s backup-fetch %s\n", d->name,
	       d->restore_usage ? d->restore_usage : "DEST NAME|LATEST");
	printf("  cairn %s backup-list | backup-show NAME | verify [NAME] | delete ...\n", d->name);
	for (cmd = d->commands; cmd && cmd->name; cmd++)
		printf("  cairn %s %s %s\n      %s\n", d->name, cmd->name, cmd->usage ? cmd->usage : "",
		       cmd->help ? cmd->help : "");
}

static int cmd_help(cli *c)
{
	const cairn_driver_plugin *d;

	if (c->argc == 1 && strcmp(c->argv[0], "config") == 0) {
		cairn_settings_print_help(stdout);
		return 0;
	}
	if (c->argc == 1 && (d = cairn_plugins_driver(c->argv[0]))) {
		engine_help(d);
		return 0;
	}
	fputs(usage_text, stdout);
	return 0;
}

typedef struct command {
	const char *name;
	int (*run)(cli *c);
	int engine_scoped; /* also valid after an engine name */
} command;

static const command commands[] = {
	{"backup-list", cmd_backup_list, 1},
	{"backup-show", cmd_backup_show, 1},
	{"verify", cmd_verify, 1},
	{"delete", cmd_delete, 1},
	{"st", cmd_st, 0},
	{"plugins", cmd_plugins, 0},
	{"help", cmd_help, 0},
	{NULL, NULL, 0},
};

static const command *find_command(const char *name, int engine)
{
	const command *cmd;

	for (cmd = commands; cmd->name; cmd++)
		if (strcmp(cmd->name, name) == 0 && (!engine || cmd->engine_scoped))
			return cmd;
	return NULL;
}

static int is_known_engine(const char *name)
{
	int i;

	for (i = 0; known_engines[i]; i++)
		if (strcmp(known_engines[i], name) == 0)
			return 1;
	return 0;
}

static int run_engine(const cairn_driver_plugin *d, int argc, char **argv)
{
	cli c = {argc - 1, argv + 1, d->name, d, NULL};
	const cairn_command *ec;
	const command *cmd;
	int error;

	if (argc == 0)
		return usage_error("usage: cairn %s <command> ('cairn help %s' lists them)", d->name,
		                   d->name);
	if ((error = cairn_session_new(&c.session, d->name, cairn_settings_get("repo"))) < 0)
		return error;
	if (strcmp(argv[0], "backup-push") == 0) {
		error = cmd_backup_push(&c);
	} else if (strcmp(argv[0], "backup-fetch") == 0) {
		error = cmd_backup_fetch(&c);
	} else if ((cmd = find_command(argv[0], 1))) {
		error = cmd->run(&c);
	} else {
		for (ec = d->commands; ec && ec->name; ec++)
			if (strcmp(ec->name, argv[0]) == 0)
				break;
		if (ec && ec->name) {
			cairn_error_clear();
			error = ec->run(cairn_host_get(), c.session, argc - 1, argv + 1);
		} else {
			error = cairn_error_set(CAIRN_EINVALID, "'%s' is not a command of engine %s",
			                        argv[0], d->name);
			cairn_error_hint("'cairn help %s' lists them", d->name);
		}
	}
	cairn_session_free(c.session);
	return error;
}

/* ---- option parsing ---- */

static const char *prescan(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, n) == 0) {
			if (argv[i][2 + n] == '=')
				return argv[i] + 3 + n;
			if (argv[i][2 + n] == 0 && i + 1 < argc)
				return argv[i + 1];
		}
	}
	return NULL;
}

typedef struct cli_option {
	const char *name;
	const char *value;
} cli_option;

/* Splits argv into options (validated against the registry) and positional arguments. */
static int parse_args(int argc, char **argv, cli_option *opts, int *nopts, char **pos, int *npos,
                      int *verbosity, int *help)
{
	int i, only_pos = 0;

	*nopts = *npos = 0;
	for (i = 1; i < argc; i++) {
		char *a = argv[i], name[128];
		const cairn_setting *s;
		const char *value = NULL, *eq;

		if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
			pos[(*npos)++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*help = 1;
			continue;
		}
		if (a[1] != '-') {
			const char *p;

			for (p = a + 1; *p; p++) {
				if (*p == 'v')
					(*verbosity)++;
				else if (*p == 'q')
					*verbosity = -1;
				else
					return usage_error("unknown option '-%c'", *p);
			}
			continue;
		}
		eq = strchr(a + 2, '=');
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
		if (!(s = cairn_settings_find(name))) {
			cairn_error_set(CAIRN_EINVALID, "unknown option '--%s'", name);
			cairn_error_hint("'cairn help config' lists the settings, each usable as --name");
			return CAIRN_EINVALID;
		}
		if (s->flags & CAIRN_SETTING_SECRET) {
			cairn_error_set(CAIRN_EINVALID,
			                "--%s cannot be given on the command line: other users can read "
			                "the process list",
			                name);
			cairn_error_hint("set it in the environment (%.*s) or the config file", (int)strcspn(s->env, " "), s->env);
			return CAIRN_EINVALID;
		}
		if (eq)
			value = eq + 1;
		else if (s->type == CAIRN_SETTING_BOOL)
			value = "true";
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return usage_error("option --%s needs a value", name);
		opts[*nopts].name = s->name;
		opts[(*nopts)++].value = value;
	}
	return 0;
}

static int setup(int argc, char **argv, char **pos, int *npos, int *help)
{
	cli_option *opts;
	const char *config;
	int nopts, verbosity = 0, error, i;

	if ((error = cairn_settings_init()) < 0)
		return error;
	/* Plugins register settings, so they load before the options are checked. */
	if ((error = cairn_settings_load_env()) < 0)
		return error;
	{
		const char *dir = prescan(argc, argv, "plugin-dir");

		if (!dir)
			dir = cairn_settings_get("plugin-dir");
		if ((error = cairn_plugins_load(dir)) < 0)
			return error;
	}
	if (!(opts = calloc((size_t)argc, sizeof(*opts))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if ((error = parse_args(argc, argv, opts, &nopts, pos, npos, &verbosity, help)) < 0)
		goto done;
	cairn_log_set_level(verbosity < 0 ? CAIRN_LOG_ERROR : CAIRN_LOG_WARN + verbosity);
	cairn_progress_enable(verbosity >= 0);
	config = prescan(argc, argv, "config");
	if (!config)
		config = cairn_settings_get("config");
	if (config && *config) {
		if ((error = cairn_settings_load_file(config)) < 0)
			goto done;
	} else if (access("/etc/cairn/cairn.conf", F_OK) == 0 &&
	           (error = cairn_settings_load_file("/etc/cairn/cairn.conf")) < 0) {
		goto done;
	}
	/* The file may name settings the environment also sets: the environment wins. */
	if ((error = cairn_settings_load_env()) < 0)
		goto done;
	for (i = 0; i < nopts; i++)
		if ((error = cairn_settings_set(opts[i].name, opts[i].value, CAIRN_SOURCE_CLI,
		                                "the command line")) < 0)
			goto done;
	error = cairn_settings_resolve_repo();
done:
	free(opts);
	return error;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	const cairn_driver_plugin *d;
	const command *cmd;
	char **pos;
	int npos = 0, help = 0, error;
	struct sigaction sa;

	base = base ? base + 1 : argv[0];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!(pos = calloc((size_t)argc + 2, sizeof(*pos))))
		return fail(cairn_error_set(CAIRN_ENOMEM, "out of memory"));
	/* cairn-pg backup-push == cairn pg backup-push */
	if (strncmp(base, "cairn-", 6) == 0 && base[6])
		pos[npos++] = (char *)base + 6;
	{
		int n = 0;

		error = setup(argc, argv, pos + npos, &n, &help);
		npos += n;
	}
	if (error < 0)
		goto done;
	if (help || npos == 0) {
		cli c = {0, NULL, NULL, NULL, NULL};

		if (npos >= 1) {
			c.argc = 1;
			c.argv = pos;
		}
		error = cmd_help(&c);
		goto done;
	}
	if (strcmp(pos[0], "version") == 0) {
		printf("cairn %s (plugin ABI %u)\n", PACKAGE_VERSION, CAIRN_ABI_VERSION);
		error = 0;
	} else if ((d = cairn_plugins_driver(pos[0]))) {
		error = run_engine(d, npos - 1, pos + 1);
	} else if ((cmd = find_command(pos[0], 0))) {
		cli c = {npos - 1, pos + 1, NULL, NULL, NULL};

		error = cmd->run(&c);
	} else if (is_known_engine(pos[0])) {
		error = cairn_error_set(CAIRN_EUNSUPPORTED,
		                        "engine %s is not available: no driver plugin for it loaded from %s",
		                        pos[0], cairn_plugins_dirs());
		cairn_error_hint("'cairn plugins' shows what loaded and why anything did not");
	} else {
		error = usage_error("unknown command '%s'", pos[0]);
	}
done:
	if (error == 0 && fflush(stdout) != 0)
		error = cairn_error_errno(errno, "cannot write to standard output");
	free(pos);
	/* Settings first: plugin settings point into plugin memory. */
	cairn_settings_free();
	cairn_plugins_unload();
	if (error < 0)
		return fail(error);
	if (cairn_interrupted)
		return EXIT_INTERRUPTED;
	return 0;
}
