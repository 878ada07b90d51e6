/*
 * conn.c - talking to a Redis server: connection settings, hiredis
 * connections, and the replication handshake that streams a snapshot.
 *
 * Getting an RDB over the network is what a replica does for a full
 * resynchronisation, and what `redis-cli --rdb` does: announce that we
 * understand the "$EOF:" form (REPLCONF capa eof), ask for the snapshot
 * only (REPLCONF rdb-only 1, Redis 7.0+: no command stream follows and the
 * server does not keep a replication buffer for us), then PSYNC ? -1,
 * which always means a full resynchronisation and answers
 * "+FULLRESYNC <replid> <offset>" first. The payload then comes as
 *
 *   $<length>\r\n<length bytes>            (the server saved to disk first)
 *   $EOF:<40 random bytes>\r\n<bytes><the same 40 bytes>   (diskless)
 *
 * with "\n" keep-alives sent while the server forks or waits for
 * repl-diskless-sync-delay. The payload is passed on as it arrives: memory
 * does not grow with the snapshot.
 *
 * hiredis (0.14 in Debian 12) does the handshake commands; the payload is
 * read from its socket directly, because it is not a RESP reply.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "redis.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#define EOF_MARK_LEN 40

struct redis_conn {
	const cairn_host *host;
	const redis_target *target;
	redisContext *ctx;
};

/* ---- settings ---------------------------------------------------------- */

/* Copies [s, s+len) with %XX decoded; NULL on a bad escape or no memory. */
static char *percent_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= len || cairn_hex_digit(s[i + 1]) < 0 || cairn_hex_digit(s[i + 2]) < 0) {
			free(out);
			return NULL;
		}
		*o++ = (char)(cairn_hex_digit(s[i + 1]) * 16 + cairn_hex_digit(s[i + 2]));
		i += 2;
	}
	*o = '\0';
	return out;
}

/* The message of a bad URL never repeats it: it may hold a password. */
static int bad_url(const cairn_host *host, const char *why)
{
	host->error(CAIRN_EINVALID, "the redis URL (redis-url, CAIRN_REDIS_URL) is not valid: %s", why);
	return CAIRN_EINVALID;
}

static int parse_url(const cairn_host *host, const char *url, redis_target *t)
{
	const char *p, *at, *hostpart, *end, *colon;
	long port;
	char *portend;

	if (strncmp(url, "rediss://", 9) == 0)
		return host->error(CAIRN_EUNSUPPORTED,
		                   "rediss:// (TLS) is not supported by this build: the redis driver is "
		                   "built on hiredis 0.14, which has no TLS");
	if (strncmp(url, "unix://", 7) == 0) {
		if (url[7] != '/')
			return bad_url(host, "unix:// needs an absolute socket path (unix:///path)");
		if (!(t->unix_path = strdup(url + 7)))
			return redis_out_of_memory(host);
		snprintf(t->where, sizeof(t->where), "unix://%s", url + 7);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return bad_url(host, "it must start with redis:// (or unix://)");
	p = url + 8;
	end = p + strcspn(p, "/?#");
	at = memrchr(p, '@', (size_t)(end - p));
	if (at) {
		const char *sep = memchr(p, ':', (size_t)(at - p));

		if (sep) {
			if (sep > p && !(t->user = percent_decode(p, (size_t)(sep - p))))
				return bad_url(host, "bad %-escape in the user name");
			if (!(t->password = percent_decode(sep + 1, (size_t)(at - sep - 1))))
				return bad_url(host, "bad %-escape in the password");
		} else if (at > p && !(t->user = percent_decode(p, (size_t)(at - p)))) {
			return bad_url(host, "bad %-escape in the user name");
		}
		hostpart = at + 1;
	} else {
		hostpart = p;
	}
	if (*hostpart == '[') {
		const char *close = memchr(hostpart, ']', (size_t)(end - hostpart));

		if (!close)
			return bad_url(host, "an IPv6 address lacks its closing ']'");
		t->host = strndup(hostpart + 1, (size_t)(close - hostpart - 1));
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(hostpart, ':', (size_t)(end - hostpart));
		t->host = strndup(hostpart, (size_t)((colon ? colon : end) - hostpart));
	}
	if (!t->host)
		return redis_out_of_memory(host);
	if (!*t->host) {
		free(t->host);
		if (!(t->host = strdup("127.0.0.1")))
			return redis_out_of_memory(host);
	}
	if (colon) {
		port = strtol(colon + 1, &portend, 10);
		if (portend != end || port < 1 || port > 65535)
			return bad_url(host, "the port is not a number from 1 to 65535");
		t->port = (int)port;
	}
	if (*end == '/' && end[1] && strcmp(end, "/0") != 0)
		host->log(CAIRN_LOG_INFO, "the database number in the redis URL is ignored: a snapshot "
		                          "holds every database");
	return 0;
}

int redis_target_load(const cairn_host *host, redis_target *t)
{
	const char *url = host->config_get("redis-url");
	const char *s;
	int64_t port;
	int error;

	memset(t, 0, sizeof(*t));
	t->port = 6379;
	if ((error = parse_url(host, url && *url ? url : "redis://127.0.0.1:6379", t)) < 0)
		goto fail;
	if ((s = host->config_get("redis-host")) && *s) {
		free(t->host);
		free(t->unix_path);
		t->unix_path = NULL;
		if (!(t->host = strdup(s))) {
			error = redis_out_of_memory(host);
			goto fail;
		}
	}
	if (host->config_get("redis-port") && (port = host->config_int("redis-port")) != 0) {
		if (port < 1 || port > 65535) {
			error = host->error(CAIRN_EINVALID, "redis-port %lld is not a port number",
			                    (long long)port);
			goto fail;
		}
		t->port = (int)port;
	}
	if ((s = host->config_get("redis-user")) && *s) {
		free(t->user);
		if (!(t->user = strdup(s))) {
			error = redis_out_of_memory(host);
			goto fail;
		}
	}
	if ((s = host->config_get("redis-password")) && *s) {
		free(t->password);
		if (!(t->password = strdup(s))) {
			error = redis_out_of_memory(host);
			goto fail;
		}
	}
	t->timeout = (int)host->config_int("redis-timeout");
	if (t->timeout <= 0)
		t->timeout = 60;
	if (t->host) {
		if (strchr(t->host, ':'))
			snprintf(t->where, sizeof(t->where), "redis://[%s]:%d", t->host, t->port);
		else
			snprintf(t->where, sizeof(t->where), "redis://%s:%d", t->host, t->port);
	}
	return 0;
fail:
	redis_target_free(t);
	return error;
}

void redis_target_free(redis_target *t)
{
	free(t->host);
	free(t->unix_path);
	free(t->user);
	if (t->password) {
		/* volatile: the compiler must not drop the wipe of memory about to be freed */
		volatile char *p = t->password;

		while (*p)
			*p++ = 0;
	}
	free(t->password);
	memset(t, 0, sizeof(*t));
}

/* ---- commands ----------------------------------------------------------- */

/* Maps a failed hiredis call (no reply) onto one message. */
static int conn_io_error(redis_conn *c, const char *doing)
{
	const cairn_host *host = c->host;
	redisContext *ctx = c->ctx;

	switch (ctx->err) {
	case REDIS_ERR_PROTOCOL:
		host->error(CAIRN_EINVALID, "%s does not speak the Redis protocol (%s while %s)",
		            c->target->where, ctx->errstr, doing);
		return CAIRN_EINVALID;
	case REDIS_ERR_EOF:
		return host->error(CAIRN_ENETWORK, "%s closed the connection while %s",
		                   c->target->where, doing);
	case REDIS_ERR_IO:
		if (errno == EAGAIN || errno == EWOULDBLOCK || strstr(ctx->errstr, "temporarily"))
			return host->error(CAIRN_ENETWORK,
			                   "%s did not answer within %d s while %s (is it a Redis server?)",
			                   c->target->where, c->target->timeout, doing);
		return host->error(CAIRN_ENETWORK, "lost the connection to %s while %s: %s",
		                   c->target->where, doing, ctx->errstr);
	default:
		return host->error(CAIRN_ENETWORK, "%s failed while %s: %s", c->target->where, doing,
		                   ctx->errstr);
	}
}

/* An error reply of the server: access problems become CAIRN_EAUTH. */
static int conn_reply_error(redis_conn *c, const redisReply *r, const char *doing)
{
	const char *msg = r->str ? r->str : "";
	int code = CAIRN_ERROR;

	if (strstr(msg, "without any password configured"))
		return c->host->error(CAIRN_EINVALID,
		                      "%s has no password set, but cairn was given one (redis-password "
		                      "or the redis URL)",
		                      c->target->where);
	if (strncmp(msg, "NOAUTH", 6) == 0 || strncmp(msg, "WRONGPASS", 9) == 0 ||
	    strncmp(msg, "NOPERM", 6) == 0 || strstr(msg, "invalid password"))
		code = CAIRN_EAUTH;
	return c->host->error(code, "%s refused %s: %s", c->target->where, doing, msg);
}

/* Runs a command given as argv; *out gets a non-error reply (free it) or NULL. */
static int conn_command(redis_conn *c, const char *doing, int argc, const char **argv,
                        redisReply **out)
{
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
	int error;

	*out = NULL;
	if (!r)
		return conn_io_error(c, doing);
	if (r->type == REDIS_REPLY_ERROR) {
		error = conn_reply_error(c, r, doing);
		freeReplyObject(r);
		return error;
	}
	*out = r;
	return 0;
}

int redis_conn_open(const cairn_host *host, const redis_target *t, redis_conn **out)
{
	struct timeval tv = {t->timeout, 0};
	redis_conn *c;
	redisReply *r = NULL;
	const char *argv[3];
	int error;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return redis_out_of_memory(host);
	c->host = host;
	c->target = t;
	c->ctx = t->unix_path ? redisConnectUnixWithTimeout(t->unix_path, tv)
	                      : redisConnectWithTimeout(t->host, t->port, tv);
	if (!c->ctx) {
		error = redis_out_of_memory(host);
		goto fail;
	}
	if (c->ctx->err) {
		error = host->error(CAIRN_ENETWORK, "cannot connect to %s: %s", t->where,
		                    c->ctx->errstr);
		goto fail;
	}
	if (redisSetTimeout(c->ctx, tv) != REDIS_OK) {
		error = host->error(CAIRN_ENETWORK, "cannot set a timeout on the connection to %s",
		                    t->where);
		goto fail;
	}
	if (t->password) {
		int n = 0;

		argv[n++] = "AUTH";
		if (t->user)
			argv[n++] = t->user;
		argv[n++] = t->password;
		if ((error = conn_command(c, "the password (AUTH)", n, argv, &r)) < 0) {
			if (error == CAIRN_EAUTH)
				host->error(CAIRN_EAUTH, "%s refused the password of user '%s'", t->where,
				            t->user ? t->user : "default");
			goto fail;
		}
		freeReplyObject(r);
	}
	argv[0] = "PING";
	if ((error = conn_command(c, "PING", 1, argv, &r)) < 0) {
		if (error == CAIRN_EAUTH && !t->password)
			host->error(CAIRN_EAUTH, "%s requires a password", t->where);
		goto fail;
	}
	if (r->type != REDIS_REPLY_STATUS || !r->str || strcmp(r->str, "PONG") != 0) {
		freeReplyObject(r);
		error = host->error(CAIRN_EINVALID, "%s does not answer PING like a Redis server",
		                    t->where);
		goto fail;
	}
	freeReplyObject(r);
	*out = c;
	return 0;
fail:
	if (error == CAIRN_EAUTH)
		/* No hint carries a password: only where it comes from. */
		host->log(CAIRN_LOG_DEBUG, "the password comes from redis-password "
		                           "(CAIRN_REDIS_PASSWORD, WALG_REDIS_PASSWORD, REDISCLI_AUTH) "
		                           "or the redis URL");
	redis_conn_close(c);
	return error;
}

void redis_conn_close(redis_conn *c)
{
	if (!c)
		return;
	if (c->ctx)
		redisFree(c->ctx);
	free(c);
}

/* Finds "name:value" in an INFO text; copies value. */
static int info_field(const char *info, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	const char *p = info;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			size_t v = strcspn(p + n + 1, "\r\n");

			snprintf(out, len, "%.*s", (int)v, p + n + 1);
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static void config_value(redis_conn *c, const char *name, char *out, size_t len)
{
	const char *argv[3] = {"CONFIG", "GET", name};
	redisReply *r = redisCommandArgv(c->ctx, 3, argv, NULL);

	out[0] = '\0';
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		snprintf(out, len, "%s", r->element[1]->str);
	if (r)
		freeReplyObject(r);
}

int redis_conn_server_info(redis_conn *c, redis_server_info *out)
{
	const char *argv[2] = {"INFO", "server"};
	redisReply *r;
	const char *p;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = conn_command(c, "INFO server", 2, argv, &r)) < 0)
		return error;
	if (r->type == REDIS_REPLY_STRING)
		info_field(r->str, "redis_version", out->version, sizeof(out->version));
	freeReplyObject(r);
	argv[1] = "keyspace";
	if ((error = conn_command(c, "INFO keyspace", 2, argv, &r)) < 0)
		return error;
	/* Lines "db<N>:keys=<k>,expires=<e>,avg_ttl=<t>" for databases holding keys. */
	for (p = r->type == REDIS_REPLY_STRING ? r->str : NULL; p && *p;) {
		unsigned long long keys;
		int db;

		if (sscanf(p, "db%d:keys=%llu", &db, &keys) == 2) {
			out->databases_used++;
			out->keys += keys;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	freeReplyObject(r);
	/* CONFIG may be denied by ACLs: these are only recorded when allowed. */
	config_value(c, "databases", out->databases_conf, sizeof(out->databases_conf));
	config_value(c, "dbfilename", out->dbfilename, sizeof(out->dbfilename));
	config_value(c, "dir", out->dir, sizeof(out->dir));
	config_value(c, "appenddirname", out->appenddirname, sizeof(out->appenddirname));
	config_value(c, "appendonly", out->appendonly, sizeof(out->appendonly));
	return 0;
}

/* ---- the replication stream ------------------------------------------- */

typedef struct sync_reader {
	redis_conn *c;
	int fd;
	uint8_t *buf;
	size_t pos, len;
	uint64_t payload_done;
} sync_reader;

/* Reads more bytes into the buffer (after what is unread); 0 at EOF. */
static int sync_fill(sync_reader *s, const char *doing)
{
	const cairn_host *host = s->c->host;
	int waited = 0;
	ssize_t n;

	if (s->pos > 0) {
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->pos = 0;
	}
	for (;;) {
		struct pollfd pfd = {s->fd, POLLIN, 0};
		int rc = poll(&pfd, 1, 1000);

		if (rc < 0 && errno == EINTR)
			return host->error(CAIRN_ECANCELED, "interrupted while %s", doing);
		if (rc < 0)
			return redis_syscall_error(host, errno, "poll the connection to",
			                           s->c->target->where);
		if (rc == 0) {
			if (++waited >= s->c->target->timeout)
				return host->error(CAIRN_ENETWORK, "%s sent nothing for %d s while %s",
				                   s->c->target->where, waited, doing);
			continue;
		}
		n = read(s->fd, s->buf + s->len, REDIS_IO_BUFFER_SIZE - s->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return host->error(CAIRN_ENETWORK, "lost the connection to %s while %s: %s",
			                   s->c->target->where, doing, strerror(errno));
		s->len += (size_t)n;
		return n == 0 ? 0 : 1;
	}
}

/* Reads one line without its "\r\n"; skips the empty keep-alive lines. */
static int sync_line(sync_reader *s, char *out, size_t out_len, const char *doing)
{
	for (;;) {
		uint8_t *nl = memchr(s->buf + s->pos, '\n', s->len - s->pos);
		int rc;

		if (nl) {
			size_t n = (size_t)(nl - (s->buf + s->pos));
			size_t copy = n;

			if (copy && s->buf[s->pos + copy - 1] == '\r')
				copy--;
			s->pos += n + 1;
			if (copy == 0)
				continue; /* keep-alive while the server prepares the snapshot */
			if (copy >= out_len)
				copy = out_len - 1;
			memcpy(out, s->buf + s->pos - n - 1, copy);
			out[copy] = '\0';
			return 0;
		}
		if (s->len - s->pos > 4096)
			return s->c->host->error(CAIRN_EINVALID,
			                         "%s sent a line longer than 4 KiB while %s: not a Redis "
			                         "replication stream",
			                         s->c->target->where, doing);
		if ((rc = sync_fill(s, doing)) < 0)
			return rc;
		if (rc == 0)
			return s->c->host->error(CAIRN_ENETWORK,
			                         "%s closed the connection while %s (server stopped?)",
			                         s->c->target->where, doing);
	}
}

static int sync_closed_early(sync_reader *s)
{
	return s->c->host->error(CAIRN_ENETWORK,
	                         "%s closed the connection after %llu bytes of the RDB snapshot: "
	                         "the server stopped or failed during the transfer",
	                         s->c->target->where, (unsigned long long)s->payload_done);
}

static int sync_payload_length(sync_reader *s, uint64_t length, redis_rdb_sink sink, void *arg)
{
	int rc;

	while (s->payload_done < length) {
		size_t avail = s->len - s->pos;

		if (avail == 0) {
			if ((rc = sync_fill(s, "receiving the RDB snapshot")) < 0)
				return rc;
			if (rc == 0)
				return sync_closed_early(s);
			continue;
		}
		if (avail > length - s->payload_done)
			avail = (size_t)(length - s->payload_done);
		if ((rc = sink(arg, s->buf + s->pos, avail)) < 0)
			return rc;
		s->pos += avail;
		s->payload_done += avail;
	}
	return 0;
}

/*
 * The "$EOF:" form: the payload ends with the marker. The last 40 bytes
 * are never passed on until more data shows they are not the marker.
 */
static int sync_payload_eof(sync_reader *s, const uint8_t mark[EOF_MARK_LEN], redis_rdb_sink sink,
                            void *arg)
{
	int rc;

	for (;;) {
		size_t avail = s->len - s->pos;

		if (avail >= EOF_MARK_LEN &&
		    memcmp(s->buf + s->len - EOF_MARK_LEN, mark, EOF_MARK_LEN) == 0) {
			if ((rc = sink(arg, s->buf + s->pos, avail - EOF_MARK_LEN)) < 0)
				return rc;
			s->payload_done += avail - EOF_MARK_LEN;
			s->pos = s->len;
			return 0;
		}
		if (avail > EOF_MARK_LEN) {
			size_t give = avail - EOF_MARK_LEN;

			if ((rc = sink(arg, s->buf + s->pos, give)) < 0)
				return rc;
			s->pos += give;
			s->payload_done += give;
		}
		if ((rc = sync_fill(s, "receiving the RDB snapshot")) < 0)
			return rc;
		if (rc == 0)
			return sync_closed_early(s);
	}
}

int redis_conn_fetch_rdb(redis_conn *c, redis_rdb_sink sink, void *arg, redis_sync_info *out)
{
	const cairn_host *host = c->host;
	const char *capa[5] = {"REPLCONF", "capa", "eof", "capa", "psync2"};
	const char *rdbonly[3] = {"REPLCONF", "rdb-only", "1"};
	static const char psync[] = "PSYNC ? -1\r\n";
	sync_reader s;
	redisReply *r;
	char line[512];
	int error;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.fd = c->ctx->fd;
	if ((error = conn_command(c, "REPLCONF capa", 5, capa, &r)) < 0)
		return error;
	freeReplyObject(r);
	r = redisCommandArgv(c->ctx, 3, rdbonly, NULL);
	if (!r)
		return conn_io_error(c, "REPLCONF rdb-only");
	if (r->type == REDIS_REPLY_ERROR)
		/* Before 7.0: the command stream follows the snapshot; we close before it. */
		host->log(CAIRN_LOG_INFO, "%s does not know REPLCONF rdb-only (Redis < 7.0)",
		          c->target->where);
	freeReplyObject(r);
	if (!(s.buf = malloc(REDIS_IO_BUFFER_SIZE)))
		return redis_out_of_memory(host);
	/* Bytes hiredis read past its last reply belong to the stream (there are none in practice). */
	if (c->ctx->reader && c->ctx->reader->len > c->ctx->reader->pos) {
		size_t left = c->ctx->reader->len - c->ctx->reader->pos;

		if (left > REDIS_IO_BUFFER_SIZE)
			left = REDIS_IO_BUFFER_SIZE;
		memcpy(s.buf, c->ctx->reader->buf + c->ctx->reader->pos, left);
		s.len = left;
	}
	out->started = (int64_t)time(NULL);
	if (cairn_write_all(s.fd, psync, sizeof(psync) - 1) < 0) {
		error = host->error(CAIRN_ENETWORK, "cannot send PSYNC to %s: %s", c->target->where,
		                    strerror(errno));
		goto done;
	}
	if ((error = sync_line(&s, line, sizeof(line), "waiting for the snapshot (PSYNC)")) < 0)
		goto done;
	if (line[0] == '-') {
		int code = strncmp(line + 1, "NOPERM", 6) == 0 || strncmp(line + 1, "NOAUTH", 6) == 0
		               ? CAIRN_EAUTH
		               : CAIRN_ERROR;

		error = host->error(code, "%s refused to send a snapshot (PSYNC): %s", c->target->where,
		                    line + 1);
		goto done;
	}
	if (strncmp(line, "+FULLRESYNC ", 12) == 0) {
		if (sscanf(line + 12, "%47s %23s", out->repl_id, out->repl_offset) != 2)
			out->repl_id[0] = out->repl_offset[0] = '\0';
		if ((error = sync_line(&s, line, sizeof(line), "waiting for the snapshot")) < 0)
			goto done;
	}
	if (line[0] != '$') {
		error = host->error(CAIRN_EINVALID,
		                    "%s answered PSYNC with '%.40s' instead of a snapshot: not a Redis "
		                    "master able to serve replicas",
		                    c->target->where, line);
		goto done;
	}
	if (strncmp(line, "$EOF:", 5) == 0) {
		uint8_t mark[EOF_MARK_LEN];

		if (strlen(line + 5) != EOF_MARK_LEN) {
			error = host->error(CAIRN_EINVALID, "%s sent a malformed EOF marker",
			                    c->target->where);
			goto done;
		}
		memcpy(mark, line + 5, EOF_MARK_LEN);
		out->eof_marker = 1;
		error = sync_payload_eof(&s, mark, sink, arg);
	} else {
		char *end;
		unsigned long long length = strtoull(line + 1, &end, 10);

		if (*end || end == line + 1) {
			error = host->error(CAIRN_EINVALID, "%s sent a malformed snapshot length '%.40s'",
			                    c->target->where, line);
			goto done;
		}
		error = sync_payload_length(&s, length, sink, arg);
	}
done:
	free(s.buf);
	return error;
}
