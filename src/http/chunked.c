/* Incremental decoder for the chunked transfer coding (RFC 9112 section 7.1):
 * a byte-at-a-time state machine, so input may be split anywhere. */
#include "http/parser.h"

#include <stdint.h>

enum {
    CHUNK_SIZE_START = 0, /* the first hex digit of a size line */
    CHUNK_SIZE,           /* further hex digits */
    CHUNK_EXT,            /* extensions after the size, ignored up to CR */
    CHUNK_SIZE_LF,
    CHUNK_DATA,
    CHUNK_DATA_CR,
    CHUNK_DATA_LF,
    CHUNK_TRAILER_START,  /* start of a trailer line or of the final CRLF */
    CHUNK_TRAILER,        /* a trailer field, ignored up to CR */
    CHUNK_TRAILER_LF,
    CHUNK_END_LF,
};

int http_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Control bytes other than HTAB never belong in an extension or trailer. */
static int is_line_char(char c)
{
    unsigned char u = (unsigned char)c;

    return u == '\t' || (u >= 0x20 && u != 0x7f);
}

/* Advance the state machine by one framing byte. Returns 0, or -1 when the
 * byte is not allowed here. */
static int step(http_chunked_t *dec, char c)
{
    int hex = http_hex_digit(c);

    switch (dec->state) {
    case CHUNK_SIZE_START:
        if (hex < 0)
            return -1;
        dec->remaining = (uint64_t)hex;
        dec->state = CHUNK_SIZE;
        return 0;
    case CHUNK_SIZE:
        if (hex >= 0) {
            if (dec->remaining > (UINT64_MAX >> 4))
                return -1;
            dec->remaining = (dec->remaining << 4) | (uint64_t)hex;
            return 0;
        }
        if (c == '\r') {
            dec->state = CHUNK_SIZE_LF;
            return 0;
        }
        if (c != ';' && c != ' ' && c != '\t')
            return -1;
        dec->state = CHUNK_EXT;
        return 0;
    case CHUNK_EXT:
        if (c == '\r')
            dec->state = CHUNK_SIZE_LF;
        else if (!is_line_char(c))
            return -1;
        return 0;
    case CHUNK_SIZE_LF:
        if (c != '\n')
            return -1;
        dec->state = dec->remaining > 0 ? CHUNK_DATA : CHUNK_TRAILER_START;
        return 0;
    case CHUNK_DATA_CR:
        if (c != '\r')
            return -1;
        dec->state = CHUNK_DATA_LF;
        return 0;
    case CHUNK_DATA_LF:
        if (c != '\n')
            return -1;
        dec->state = CHUNK_SIZE_START;
        return 0;
    case CHUNK_TRAILER_START:
        if (c == '\r') {
            dec->state = CHUNK_END_LF;
            return 0;
        }
        if (!is_line_char(c) || c == ' ' || c == '\t')
            return -1;
        dec->state = CHUNK_TRAILER;
        return 0;
    case CHUNK_TRAILER:
        if (c == '\r')
            dec->state = CHUNK_TRAILER_LF;
        else if (!is_line_char(c))
            return -1;
        return 0;
    case CHUNK_TRAILER_LF:
        if (c != '\n')
            return -1;
        dec->state = CHUNK_TRAILER_START;
        return 0;
    case CHUNK_END_LF:
        if (c != '\n')
            return -1;
        dec->done = 1;
        return 0;
    default:
        return -1;
    }
}

long http_chunked_decode(http_chunked_t *dec, const char *in, size_t in_len, buf_t *out)
{
    size_t pos = 0;

    while (pos < in_len && !dec->done) {
        if (dec->state != CHUNK_DATA) {
            if (step(dec, in[pos]) != 0)
                return -1;
            pos++;
            continue;
        }

        size_t n = in_len - pos;
        if ((uint64_t)n > dec->remaining)
            n = (size_t)dec->remaining;
        if (out != NULL && buf_append(out, in + pos, n) != 0)
            return -1;
        pos += n;
        dec->remaining -= n;
        if (dec->remaining == 0)
            dec->state = CHUNK_DATA_CR;
    }
    return (long)pos;
}
