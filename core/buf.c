/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "error.h"

int cairn_buf_reserve(cairn_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len - 1)
		return cairn_error_set(CAIRN_ENOMEM, "buffer size overflow");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int cairn_buf_append(cairn_buf *b, const void *data, size_t len)
{
	int error;

	if (len == 0)
		return 0;
	if ((error = cairn_buf_reserve(b, len)) < 0)
		return error;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, error;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return cairn_error_set(CAIRN_ERROR, "formatting failed");
	if ((error = cairn_buf_reserve(b, (size_t)n + 1)) < 0)
		return error;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int cairn_buf_terminate(cairn_buf *b)
{
	int error;

	if ((error = cairn_buf_reserve(b, 1)) < 0)
		return error;
	b->data[b->len] = 0;
	return 0;
}

void cairn_buf_clear(cairn_buf *b)
{
	b->len = 0;
}

void cairn_buf_free_secure(cairn_buf *b)
{
	if (b->data)
		cairn_secure_zero(b->data, b->cap);
	cairn_buf_free(b);
}

void cairn_buf_free(cairn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
