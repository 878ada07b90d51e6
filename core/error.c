/* error.c - thread-local last error (see error.h). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERROR_MAX 1024

/* Appends src to the NUL-terminated dst of capacity ERROR_MAX, truncating. */
static void append(char *dst, const char *src)
{
	size_t n = strlen(dst), m = strlen(src);

	if (m > ERROR_MAX - 1 - n)
		m = ERROR_MAX - 1 - n;
	memcpy(dst + n, src, m);
	dst[n + m] = 0;
}

static __thread int last_code;
static __thread char last_message[ERROR_MAX];
static __thread char last_hint[ERROR_MAX];

int cairn_error_vset(int code, const char *fmt, va_list ap)
{
	last_code = code;
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	last_hint[0] = 0;
	return code;
}

int cairn_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cairn_error_vset(code, fmt, ap);
	va_end(ap);
	return code;
}

int cairn_error_from_errno(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return CAIRN_ENOTFOUND;
	case EEXIST:
	case ENOTEMPTY:
		return CAIRN_EEXISTS;
	case ENOMEM:
		return CAIRN_ENOMEM;
	case EACCES:
	case EPERM:
		return CAIRN_EAUTH;
	case EINVAL:
		return CAIRN_EINVALID;
	case EINTR:
		return CAIRN_ECANCELED;
	default:
		return CAIRN_EIO;
	}
}

int cairn_error_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cairn_error_vset(cairn_error_from_errno(err), fmt, ap);
	va_end(ap);
	append(last_message, ": ");
	append(last_message, strerror(err));
	return last_code;
}

int cairn_error_wrap(int code, const char *fmt, ...)
{
	char old[ERROR_MAX], hint[ERROR_MAX];
	va_list ap;

	memcpy(old, last_message, sizeof(old));
	memcpy(hint, last_hint, sizeof(hint));
	va_start(ap, fmt);
	cairn_error_vset(code, fmt, ap);
	va_end(ap);
	if (old[0]) {
		append(last_message, ": ");
		append(last_message, old);
	}
	memcpy(last_hint, hint, sizeof(hint));
	return code;
}

void cairn_error_hint(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_hint, sizeof(last_hint), fmt, ap);
	va_end(ap);
}

const char *cairn_error_message(void)
{
	return last_message;
}

const char *cairn_error_hint_text(void)
{
	return last_hint;
}

int cairn_error_code_last(void)
{
	return last_code;
}

void cairn_error_clear(void)
{
	last_code = 0;
	last_message[0] = 0;
	last_hint[0] = 0;
}

void cairn_error_save(cairn_error_saved *out)
{
	out->code = last_code;
	memcpy(out->message, last_message, sizeof(out->message));
	memcpy(out->hint, last_hint, sizeof(out->hint));
}

void cairn_error_restore(const cairn_error_saved *saved)
{
	last_code = saved->code;
	memcpy(last_message, saved->message, sizeof(last_message));
	memcpy(last_hint, saved->hint, sizeof(last_hint));
}
