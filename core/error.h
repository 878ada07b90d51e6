/*
 * error.h - the last error of the calling thread.
 *
 * Functions return 0 or a negative cairn_error_code; the one-line message
 * (what, where, why) is kept here. An optional hint line tells the user what
 * to do. Messages never contain secrets.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

#include <stdarg.h>
#include <cairn/plugin.h>

/* Records code and message; returns code. */
int cairn_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cairn_error_vset(int code, const char *fmt, va_list ap);
/* Records the message with ": <strerror(errno)>" appended; code from errno. */
int cairn_error_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with context ("reading X: " + old). */
int cairn_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the hint shown after the message. */
void cairn_error_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cairn_error_message(void); /* "" when none */
const char *cairn_error_hint_text(void);   /* "" when none */
int cairn_error_code_last(void);
void cairn_error_clear(void);
/* Keeps the current error across cleanup code that may overwrite it. */
typedef struct cairn_error_saved {
	int code;
	char message[1024];
	char hint[1024];
} cairn_error_saved;
void cairn_error_save(cairn_error_saved *out);
void cairn_error_restore(const cairn_error_saved *saved);

/* Maps an errno value to a cairn_error_code. */
int cairn_error_from_errno(int err);

#endif
