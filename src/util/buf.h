/* Growable byte buffer, always NUL-terminated so it can be read as a string. */
#ifndef NIMDECK_UTIL_BUF_H
#define NIMDECK_UTIL_BUF_H

#include <stddef.h>

typedef struct {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes used, not counting the trailing NUL */
    size_t cap;   /* bytes allocated */
} buf_t;

#define BUF_INIT {NULL, 0, 0}

/* Each returns 0, or -1 when memory runs out (the buffer is left unchanged). */
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *data, size_t len);
int buf_append_str(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drop the first n bytes, keeping the rest. */
void buf_consume(buf_t *b, size_t n);
void buf_reset(buf_t *b);
void buf_free(buf_t *b);

/* Hand the data to the caller (who frees it) and leave the buffer empty. */
char *buf_steal(buf_t *b);

#endif
