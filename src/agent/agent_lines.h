/* Splitting an instance's output stream into console lines. Lines are kept
 * whole across reads, so masking finds every secret in one piece. */
#ifndef NIMDECK_AGENT_AGENT_LINES_H
#define NIMDECK_AGENT_AGENT_LINES_H

#include <stddef.h>

#include "util/buf.h"

/* Called with one line, without its "\n" or "\r\n" and not NUL-terminated. */
typedef void (*agent_line_fn)(void *ctx, const char *line, size_t len);

typedef struct {
    buf_t pending;                /* the partial line read so far */
    size_t max_line;              /* longer lines are cut into pieces of at most this */
    const char *const *secrets;   /* borrowed, NULL-terminated; a cut never splits one */
} agent_lines_t;

/* secrets may be NULL; it must outlive the splitter. */
void agent_lines_init(agent_lines_t *lines, size_t max_line, const char *const *secrets);

/* Append data and call fn for every complete line, and for a piece of a line
 * that has grown past max_line. Returns 0, or -1 when memory runs out (the
 * partial line is then dropped). */
int agent_lines_feed(agent_lines_t *lines, const char *data, size_t len, agent_line_fn fn,
                     void *ctx);

/* Emit the partial line, if any, as a line (at the end of a stream). */
void agent_lines_flush(agent_lines_t *lines, agent_line_fn fn, void *ctx);

void agent_lines_free(agent_lines_t *lines);

/* Append text to out with every byte sequence that is not valid UTF-8
 * replaced by U+FFFD, so that it can go into a JSON string. */
int agent_utf8_sanitize(const char *text, size_t len, buf_t *out);

#endif
