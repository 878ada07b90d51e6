/*
 * cairn/plugin.h - the plugin ABI of cairn.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * CAIRN_PLUGIN_INIT_SYMBOL ("cairn_plugin_init"). The host calls it once with
 * its table of services; the function registers one or more descriptors
 * (drivers or storages) through host->register_driver/register_storage and
 * returns 0. It does no other work: everything else happens in callbacks.
 *
 * Rules of this ABI (see PLUGINS.md for a walkthrough):
 *  - The host calls plugins from one thread at a time; host->error keeps its
 *    message per thread.
 *  - `argv` of backup and of commands holds only positional arguments; the
 *    options were parsed into settings (host->config_get).
 *  - Every descriptor and vtable starts with `unsigned int version`, set to
 *    CAIRN_ABI_VERSION by the plugin at build time. Members are only ever
 *    appended; the version is bumped with every change. The host rejects 0 and
 *    versions newer than its own, and never reads a slot a plugin's version
 *    does not have.
 *  - Errors cross the boundary as the negative codes of cairn_error_code.
 *    Before returning one, a plugin describes it with host->error(), which
 *    keeps the message for the user (one line: what, where, why).
 *  - Optional slots may be NULL; the host then falls back or reports
 *    "not supported by <plugin>". Capability bits say what slot presence
 *    cannot.
 *  - Plugins never resolve symbols of the cairn binary; all services come
 *    through the host table.
 */
#ifndef CAIRN_PLUGIN_H
#define CAIRN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Version 1: drivers, storages, backup writer/reader, settings.
 * Version 2: sessions, log segments, backup listing for drivers, and the
 *            driver slot prune_logs.
 * Version 3: host->entry_chunk_size (per-entry content-defined chunk size,
 *            for engines whose snapshot is one big stream).
 * Version 4: the setting flag CAIRN_SETTING_REPO_URL.
 * Version 5: host->entry_reuse (unchanged files are not read again).
 * Version 6: the storage capability CAIRN_STORAGE_CAP_CONCURRENT_GET.
 * Version 7: host->prev_meta and host->entry_copy_prev (changed files of
 *            which the driver knows the unchanged blocks are not read whole).
 */
#define CAIRN_ABI_VERSION 7u

#define CAIRN_PLUGIN_INIT_SYMBOL "cairn_plugin_init"

/* Error codes: 0 is success, failures are negative. */
typedef enum cairn_error_code {
	CAIRN_OK = 0,
	CAIRN_ERROR = -1,        /* failure without a more specific code */
	CAIRN_ENOTFOUND = -2,    /* object, backup, file or segment missing */
	CAIRN_EEXISTS = -3,      /* exists already (with other content) */
	CAIRN_EINVALID = -4,     /* bad input, usage or configuration */
	CAIRN_EIO = -5,          /* local I/O error */
	CAIRN_ENOMEM = -6,       /* out of memory */
	CAIRN_ECORRUPT = -7,     /* stored data failed verification */
	CAIRN_EAUTH = -8,        /* wrong key, wrong password, access denied */
	CAIRN_EUNSUPPORTED = -9, /* operation not supported by this plugin */
	CAIRN_ENETWORK = -10,    /* transient network or server error */
	CAIRN_ELOCKED = -11,     /* repository locked by another process */
	CAIRN_ECANCELED = -12    /* interrupted by a signal */
} cairn_error_code;

typedef enum cairn_log_level {
	CAIRN_LOG_ERROR = 0,
	CAIRN_LOG_WARN = 1,
	CAIRN_LOG_INFO = 2,
	CAIRN_LOG_DEBUG = 3
} cairn_log_level;

/* ---- settings ---------------------------------------------------------- */

typedef enum cairn_setting_type {
	CAIRN_SETTING_STRING = 1,
	CAIRN_SETTING_INT = 2,  /* signed 64-bit decimal */
	CAIRN_SETTING_BOOL = 3, /* true/false/yes/no/on/off/1/0 */
	CAIRN_SETTING_SIZE = 4  /* bytes with optional K, M, G, T suffix (base 1024) */
} cairn_setting_type;

#define CAIRN_SETTING_SECRET 0x1u /* never printed; not accepted on the command line */
/*
 * (Version 4) A storage's setting that holds a repository URL under another
 * tool's name (WAL-G's WALG_S3_PREFIX): when `repo` is not set, the value of
 * the one such setting that is set becomes the repository URL.
 */
#define CAIRN_SETTING_REPO_URL 0x2u

/*
 * One setting. `name` is the config file key and the command line option
 * (--name). `env` is a space-separated list of environment variable names,
 * the first being cairn's own (CAIRN_...); the others are accepted aliases
 * (WAL-G names). Arrays of settings end with an entry whose name is NULL.
 */
typedef struct cairn_setting {
	const char *name;
	cairn_setting_type type;
	const char *default_value; /* NULL: unset */
	const char *env;
	const char *help;
	unsigned int flags;
} cairn_setting;

/* ---- backup entries ------------------------------------------------------ */

typedef enum cairn_entry_type {
	CAIRN_ENTRY_FILE = 1,
	CAIRN_ENTRY_DIR = 2,
	CAIRN_ENTRY_SYMLINK = 3,
	CAIRN_ENTRY_STREAM = 4 /* a named byte stream (e.g. an RDB snapshot) */
} cairn_entry_type;

typedef enum cairn_chunking {
	CAIRN_CHUNK_CDC = 0,  /* content-defined (FastCDC), the default */
	CAIRN_CHUNK_FIXED = 1 /* fixed, aligned blocks of block_size bytes */
} cairn_chunking;

/*
 * Metadata of one entry. When writing, the driver owns all pointers and they
 * must stay valid until entry_begin returns. When reading, the host owns them
 * and they stay valid until the next entry_next call.
 */
typedef struct cairn_entry {
	cairn_entry_type type;
	const char *path;        /* relative, '/'-separated, no empty, "." or ".." parts;
	                          * exactly "." names the root of a tree */
	uint32_t mode;           /* permission bits (07777) */
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;           /* reading: bytes stored; writing: ignored */
	const char *link_target; /* symlinks only */
	cairn_chunking chunking; /* writing only */
	uint32_t block_size;     /* CAIRN_CHUNK_FIXED only; 0: 1 MiB */
} cairn_entry;

/* Opaque handles owned by the host. */
typedef struct cairn_backup_writer cairn_backup_writer;
typedef struct cairn_backup_reader cairn_backup_reader;
typedef struct cairn_session cairn_session;
typedef struct cairn_host cairn_host;

/* ---- storages ---------------------------------------------------------- */

#define CAIRN_STORAGE_CAP_ATOMIC_PUT 0x1u /* a put is visible whole or not at all */
#define CAIRN_STORAGE_CAP_RANGE_GET 0x2u  /* get honours offset/length without reading the rest */
#define CAIRN_STORAGE_CAP_LIST_SIZES 0x4u /* list reports sizes */
/* (Version 6) get and stat may run on several threads at once (restores fetch in parallel) */
#define CAIRN_STORAGE_CAP_CONCURRENT_GET 0x8u

#define CAIRN_TO_END UINT64_MAX

typedef struct cairn_storage cairn_storage;
typedef struct cairn_upload cairn_upload;

typedef struct cairn_stat {
	uint64_t size;
	int64_t mtime_sec; /* 0 when unknown */
} cairn_stat;

/* Receives data of a get in order; return 0 to go on, a negative code to stop. */
typedef int (*cairn_sink_fn)(void *arg, const void *data, size_t len);
/* Receives one key of a list; return 0 to go on, a negative code to stop. */
typedef int (*cairn_list_fn)(void *arg, const char *key, uint64_t size);

/*
 * An open storage. Keys are '/'-separated relative names made of
 * [A-Za-z0-9._-] parts; the storage maps them onto its namespace below the
 * location it was opened with. A storage never sees plaintext of backups.
 * A concrete storage embeds this struct as its first member.
 */
struct cairn_storage {
	unsigned int version;
	unsigned int caps;

	/* Must provide. Starts a streaming upload of unknown size to `key`. */
	int (*put_begin)(cairn_storage *st, const char *key, cairn_upload **out);
	/* Must provide. Appends data to the upload. After a failure the host calls put_abort. */
	int (*put_write)(cairn_upload *up, const void *data, size_t len);
	/*
	 * Must provide. Makes the object visible under its key, replacing an
	 * existing one, and frees `up` whatever the outcome.
	 */
	int (*put_commit)(cairn_upload *up);
	/* Must provide. Discards the upload, leaves nothing behind, frees `up`. */
	void (*put_abort)(cairn_upload *up);
	/*
	 * Must provide. Streams `length` bytes (CAIRN_TO_END: all) from `offset`
	 * into sink. Returns CAIRN_ENOTFOUND without calling error() noise when
	 * the key does not exist (the host words that message). Reading past the
	 * end delivers what exists.
	 */
	int (*get)(cairn_storage *st, const char *key, uint64_t offset, uint64_t length,
	           cairn_sink_fn sink, void *arg);
	/* Must provide. CAIRN_ENOTFOUND when the key does not exist. */
	int (*stat)(cairn_storage *st, const char *key, cairn_stat *out);
	/*
	 * Must provide. Calls cb for every key starting with `prefix` (a plain
	 * string prefix, not only a folder), in any order.
	 */
	int (*list)(cairn_storage *st, const char *prefix, cairn_list_fn cb, void *arg);
	/* Must provide. Removes the keys; keys that do not exist are not errors. */
	int (*remove)(cairn_storage *st, const char *const *keys, size_t count);
	/* Must provide. Frees the storage; accepts NULL. */
	void (*close)(cairn_storage *st);
};

/* Describes one storage kind. Static storage duration. */
typedef struct cairn_storage_plugin {
	unsigned int version;
	const char *name;           /* "fs" */
	const char *plugin_version; /* "1.0.0" */
	const char *description;    /* one line */
	const char *const *schemes; /* NULL-terminated URL schemes: "file" */
	unsigned int caps;          /* CAIRN_STORAGE_CAP_* */
	const cairn_setting *settings; /* may be NULL */
	/*
	 * Must provide. Opens the storage at `location` (the URL, or a plain
	 * path for fs). Settings are read with host->config_get.
	 */
	int (*open)(cairn_storage **out, const char *location, const cairn_host *host);
} cairn_storage_plugin;

/* ---- drivers ----------------------------------------------------------- */

/* An engine-specific command (wal-push, ...), dispatched by the CLI. */
typedef struct cairn_command {
	const char *name;
	const char *usage; /* arguments, e.g. "PATH" */
	const char *help;  /* one line */
	int (*run)(const cairn_host *host, cairn_session *session, int argc,
	           char *const *argv);
} cairn_command;

#define CAIRN_DRIVER_CAP_RESTORE_OVER 0x1u /* honours the `force` setting */

/* Describes one engine. Static storage duration. */
typedef struct cairn_driver_plugin {
	unsigned int version;
	const char *name;              /* "dir" */
	const char *const *aliases;    /* NULL-terminated or NULL */
	const char *plugin_version;
	const char *description;
	unsigned int caps;
	const cairn_setting *settings; /* may be NULL */
	const char *backup_usage;      /* "PATH" */
	const char *restore_usage;     /* "DEST NAME|LATEST" */
	/*
	 * Must provide. Produces the entries of one snapshot into `w` from the
	 * positional arguments of backup-push. Sets the meta key "source".
	 * The host commits the backup only when this returns 0.
	 */
	int (*backup)(const cairn_host *host, cairn_backup_writer *w, int argc,
	              char *const *argv);
	/*
	 * Must provide. Restores the backup read from `r` into `dest`. Must not
	 * overwrite existing data unless the setting "force" is true.
	 */
	int (*restore)(const cairn_host *host, cairn_backup_reader *r, const char *dest);
	const cairn_command *commands; /* ended by a NULL name, or NULL */

	/* ---- version 2 ---- */
	/*
	 * May provide. Called by `delete --confirm` after backups were removed,
	 * under the repository's exclusive lock: removes the log segments that
	 * no remaining backup needs (host->backup_list tells which remain).
	 */
	int (*prune_logs)(const cairn_host *host, cairn_session *session);
} cairn_driver_plugin;

/* ---- the host services ------------------------------------------------- */

struct cairn_host {
	unsigned int version;

	/* Logs one line at `level` (printf format, no newline). */
	void (*log)(cairn_log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
	/* Records the message of the error being returned; returns `code`. */
	int (*error)(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
	/* Value of a setting by name, NULL when unset. Owned by the host. */
	const char *(*config_get)(const char *name);
	/* Parsed forms; the setting must exist with that type. */
	int (*config_bool)(const char *name);
	int64_t (*config_int)(const char *name);

	/* Allocation; NULL after recording CAIRN_ENOMEM. */
	void *(*alloc)(size_t size);
	void (*free)(void *ptr);

	/* Registration, only from cairn_plugin_init. */
	int (*register_driver)(const cairn_driver_plugin *driver);
	int (*register_storage)(const cairn_storage_plugin *storage);

	/* Backup writer: entries are written one at a time, in order. */
	int (*entry_begin)(cairn_backup_writer *w, const cairn_entry *entry);
	int (*entry_write)(cairn_backup_writer *w, const void *data, size_t len);
	int (*entry_end)(cairn_backup_writer *w);
	/* Manifest metadata: engine positions, versions, "source". */
	int (*meta_set)(cairn_backup_writer *w, const char *key, const char *value);

	/*
	 * Backup reader: entry_next returns 1 with *out set, 0 at the end, or a
	 * negative code. entry_read reads the current entry's data (verified)
	 * and sets *out_len to 0 at its end. An entry whose data is not read is
	 * skipped without fetching it.
	 */
	int (*entry_next)(cairn_backup_reader *r, const cairn_entry **out);
	int (*entry_read)(cairn_backup_reader *r, void *buf, size_t len, size_t *out_len);
	/* Manifest metadata, NULL when absent. Owned by the host. */
	const char *(*meta_get)(cairn_backup_reader *r, const char *key);

	/* Reports progress of long work (bytes done of total, 0 if unknown). */
	void (*progress)(uint64_t done, uint64_t total);

	/* ---- version 2 ---- */
	/* The session (repository and engine) of a writer or reader. */
	cairn_session *(*writer_session)(cairn_backup_writer *w);
	cairn_session *(*reader_session)(cairn_backup_reader *r);
	/*
	 * Log segments of the session's engine, one framed object each, stored
	 * as logs/<engine>/<name>; names are key parts ([A-Za-z0-9._-], may
	 * contain '/'). log_put stores length bytes (CAIRN_TO_END: to the end)
	 * of the file at path from offset. Putting a segment that exists with the
	 * same content succeeds; with other content it fails with CAIRN_EEXISTS
	 * and changes nothing.
	 */
	int (*log_put)(cairn_session *s, const char *name, const char *path, uint64_t offset,
	               uint64_t length);
	/*
	 * Writes a segment to dest_path atomically (temp file, fsync, rename).
	 * CAIRN_ENOTFOUND without a message when the segment does not exist.
	 */
	int (*log_get)(cairn_session *s, const char *name, const char *dest_path);
	/* Streams a segment's verified content into sink. */
	int (*log_read)(cairn_session *s, const char *name, cairn_sink_fn sink, void *arg);
	/* Lists segments whose name starts with prefix (names without logs/<engine>/). */
	int (*log_list)(cairn_session *s, const char *prefix, cairn_list_fn cb, void *arg);
	int (*log_remove)(cairn_session *s, const char *const *names, size_t count);
	/*
	 * Calls cb for every backup of the session's engine, oldest first, with
	 * its meta as a NULL-terminated key, value, key, value ... array.
	 */
	int (*backup_list)(cairn_session *s,
	                   int (*cb)(void *arg, const char *name, int64_t end_time,
	                             const char *const *meta),
	                   void *arg);

	/* ---- version 3 ---- */
	/*
	 * May be called between entry_begin and the first entry_write of a
	 * CAIRN_CHUNK_CDC entry: cuts this entry around avg_size bytes (a power
	 * of two, 256 B to 16 MiB; min avg/4, max avg*4) instead of the
	 * repository's chunk-avg-size. One stream holding a whole dataset (an
	 * RDB snapshot) changes in many small scattered places, where a file
	 * tree changes in few files: small chunks keep such a change small.
	 * Check host->version >= 3 before calling.
	 */
	int (*entry_chunk_size)(cairn_backup_writer *w, size_t avg_size);

	/* ---- version 5 ---- */
	/*
	 * Instead of entry_begin for a regular file, with entry->size set to
	 * its size: when the previous backup of the same source (meta "source",
	 * and "identity" when the driver sets it; both set before) holds a file
	 * at that path with the same size and modification time, modified at
	 * least a second before that backup started, records the entry with
	 * that backup's chunks and returns 1, and the driver does not read the
	 * file. Returns 0 when the file must be read (entry_begin ... as usual),
	 * or a negative code. The setting skip-unchanged=false makes it return 0.
	 * Check host->version >= 5 before calling.
	 */
	int (*entry_reuse)(cairn_backup_writer *w, const cairn_entry *entry);
	/* ---- version 7 ---- */
	/*
	 * Meta `key` of the backup entry_reuse takes files from (the previous
	 * backup of the same source; "source" and "identity" must be set), or
	 * "name" for its name. NULL when there is no such backup, it lacks the
	 * key, or skip-unchanged is false. Owned by the host.
	 */
	const char *(*prev_meta)(cairn_backup_writer *w, const char *key);
	/*
	 * Inside a CAIRN_CHUNK_FIXED entry, instead of entry_write of the next
	 * `length` bytes, which the driver knows to be the same as in that
	 * backup's file at this path (a database that logs every page it
	 * changes can know): records that backup's chunks for them and returns
	 * 1. The entry's size so far and `length` must be multiples of its block
	 * size. Returns 0 when the bytes must be written after all (no such
	 * file, other block size, too short), or a negative code. The host
	 * cannot check the claim: a wrong one makes a wrong backup.
	 * Check host->version >= 7 before calling.
	 */
	int (*entry_copy_prev)(cairn_backup_writer *w, uint64_t length);
};

/*
 * The one symbol a plugin exports; visible even when the plugin is built
 * with -fvisibility=hidden.
 */
typedef int (*cairn_plugin_init_fn)(const cairn_host *host);
__attribute__((visibility("default"))) int cairn_plugin_init(const cairn_host *host);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_PLUGIN_H */
