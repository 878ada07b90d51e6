/* host.c - the services table handed to plugins (see host.h). */
#include "host.h"

#include <stdarg.h>
#include <stdlib.h>

#include "backup.h"
#include "error.h"
#include "log.h"
#include "plugins.h"
#include "session.h"
#include "settings.h"

static void host_log(cairn_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int host_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void host_log(cairn_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cairn_log(level, "%s", msg);
}

static int host_error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cairn_error_vset(code, fmt, ap);
	va_end(ap);
	return code;
}

static int host_config_bool(const char *name)
{
	return cairn_settings_get_bool(name);
}

static int64_t host_config_int(const char *name)
{
	const cairn_setting *s = cairn_settings_find(name);

	if (s && s->type == CAIRN_SETTING_SIZE)
		return (int64_t)cairn_settings_get_size(name);
	return cairn_settings_get_int(name);
}

static void *host_alloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		cairn_error_set(CAIRN_ENOMEM, "out of memory allocating %zu bytes", size);
	return p;
}

static void host_free(void *p)
{
	free(p);
}

static const cairn_host host = {
	.version = CAIRN_ABI_VERSION,
	.log = host_log,
	.error = host_error,
	.config_get = cairn_settings_get,
	.config_bool = host_config_bool,
	.config_int = host_config_int,
	.alloc = host_alloc,
	.free = host_free,
	.register_driver = cairn_plugins_register_driver,
	.register_storage = cairn_plugins_register_storage,
	.entry_begin = cairn_backup_writer_entry_begin,
	.entry_write = cairn_backup_writer_entry_write,
	.entry_end = cairn_backup_writer_entry_end,
	.meta_set = cairn_backup_writer_meta_set,
	.entry_next = cairn_backup_reader_next,
	.entry_read = cairn_backup_reader_read,
	.meta_get = cairn_backup_reader_meta,
	.progress = cairn_progress_update,
	.writer_session = cairn_backup_writer_session,
	.reader_session = cairn_backup_reader_session,
	.log_put = cairn_log_put,
	.log_get = cairn_log_get,
	.log_read = cairn_log_read,
	.log_list = cairn_log_list,
	.log_remove = cairn_log_remove,
	.backup_list = cairn_session_backup_list,
	.entry_chunk_size = cairn_backup_writer_entry_chunk_size,
	.entry_reuse = cairn_backup_writer_entry_reuse,
	.prev_meta = cairn_backup_writer_prev_meta,
	.entry_copy_prev = cairn_backup_writer_entry_copy_prev,
};

const cairn_host *cairn_host_get(void)
{
	return &host;
}
