/*
 * buf.h - a growable byte buffer.
 *
 * The buffer owns `data`; cairn_buf_free releases it and accepts a zeroed or
 * already freed buffer. Functions that append keep existing bytes.
 */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} cairn_buf;

#define CAIRN_BUF_INIT {NULL, 0, 0}

/* Makes room for `extra` more bytes after len; CAIRN_ENOMEM on failure. */
int cairn_buf_reserve(cairn_buf *b, size_t extra);
int cairn_buf_append(cairn_buf *b, const void *data, size_t len);
int cairn_buf_printf(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a NUL without counting it in len, so data can be used as a string. */
int cairn_buf_terminate(cairn_buf *b);
void cairn_buf_clear(cairn_buf *b);
/* Zeroes the contents before freeing (for key material). */
void cairn_buf_free_secure(cairn_buf *b);
void cairn_buf_free(cairn_buf *b);

/* Little-endian integer helpers for on-disk formats. */
static inline void cairn_put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t cairn_get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void cairn_put_u64le(uint8_t *p, uint64_t v)
{
	cairn_put_u32le(p, (uint32_t)v);
	cairn_put_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t cairn_get_u64le(const uint8_t *p)
{
	return (uint64_t)cairn_get_u32le(p) | ((uint64_t)cairn_get_u32le(p + 4) << 32);
}

#endif
