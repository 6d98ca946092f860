/* No-allocation JSON scanning (RFC 8259 grammar) for the usage object of
 * completion responses. */
#include "gateway/gw_json.h"

#include <string.h>

/* Keys longer than this cannot be one the gateway looks for. */
#define GW_JSON_KEY_MAX 32

/* The kind of a scanned value; for a string its `integer` is the decoded
 * length, for an array its number of elements. */
typedef enum {
    GW_JSON_OTHER,
    GW_JSON_OBJECT,
    GW_JSON_INTEGER,
    GW_JSON_STRING,
    GW_JSON_ARRAY,
} gw_json_kind_t;

typedef struct {
    const char *p;
    const char *end;
} gw_scan_t;

/* Called for each member of an object once its value was scanned: key is
 * the decoded key (key_len > GW_JSON_KEY_MAX when it did not fit), value
 * points at the value's first byte. */
typedef void (*gw_member_fn)(void *ctx, const char *key, size_t key_len, const char *value,
                             gw_json_kind_t kind, int64_t integer);

static int gw_scan_value(gw_scan_t *s, int depth, gw_json_kind_t *kind, int64_t *integer);

static void gw_skip_ws(gw_scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int gw_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

/* The \uXXXX escape at s->p (after the 'u'), with a surrogate pair taken
 * whole. Returns the code point, or -1 when invalid (as is \u0000). */
static long gw_scan_unicode(gw_scan_t *s)
{
    unsigned hi, lo;

    if (s->end - s->p < 4 || gw_hex4(s->p, &hi) != 0 || hi == 0)
        return -1;
    s->p += 4;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return -1;
    if (hi < 0xd800 || hi > 0xdbff)
        return (long)hi;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || gw_hex4(s->p + 2, &lo) != 0 ||
        lo < 0xdc00 || lo > 0xdfff)
        return -1;
    s->p += 6;
    return 0x10000 + (((long)hi - 0xd800) << 10) + ((long)lo - 0xdc00);
}

/* Scan the string at s->p (its opening quote), decoding it into key when
 * key is not NULL. *key_len receives the decoded length, in which an escape
 * counts as one, so it is 0 only for an empty string. Returns 0, or -1 when
 * the string is invalid. */
static int gw_scan_string(gw_scan_t *s, char *key, size_t *key_len)
{
    size_t n = 0;

    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        long code = c;

        if (c == '"') {
            if (key_len != NULL)
                *key_len = n;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            switch (*s->p++) {
            case '"': code = '"'; break;
            case '\\': code = '\\'; break;
            case '/': code = '/'; break;
            case 'b': code = '\b'; break;
            case 'f': code = '\f'; break;
            case 'n': code = '\n'; break;
            case 'r': code = '\r'; break;
            case 't': code = '\t'; break;
            case 'u':
                code = gw_scan_unicode(s);
                if (code < 0)
                    return -1;
                break;
            default:
                return -1;
            }
        }
        /* Only ASCII keys are looked for; anything else only has to differ. */
        if (key != NULL && n < GW_JSON_KEY_MAX)
            key[n] = code < 0x80 ? (char)code : (char)0x80;
        n++;
    }
    return -1;
}

static int gw_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Scan a number; an integer (no fraction or exponent) within int64 is
 * returned in *integer with *kind GW_JSON_INTEGER. An integer beyond int64
 * is invalid, as in jansson. */
static int gw_scan_number(gw_scan_t *s, gw_json_kind_t *kind, int64_t *integer)
{
    int negative = 0, is_integer = 1;
    uint64_t value = 0, limit;
    int overflow = 0;

    if (*s->p == '-') {
        negative = 1;
        s->p++;
    }
    if (s->p >= s->end || !gw_is_digit(*s->p))
        return -1;
    if (*s->p == '0') {
        s->p++;
    } else {
        limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        while (s->p < s->end && gw_is_digit(*s->p)) {
            unsigned d = (unsigned)(*s->p++ - '0');
            if (value > (limit - d) / 10)
                overflow = 1;
            else
                value = value * 10 + d;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        is_integer = 0;
        s->p++;
        if (s->p >= s->end || !gw_is_digit(*s->p))
            return -1;
        while (s->p < s->end && gw_is_digit(*s->p))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        is_integer = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !gw_is_digit(*s->p))
            return -1;
        while (s->p < s->end && gw_is_digit(*s->p))
            s->p++;
    }
    if (!is_integer) {
        *kind = GW_JSON_OTHER;
        return 0;
    }
    if (overflow)
        return -1;
    *kind = GW_JSON_INTEGER;
    *integer = negative ? (int64_t)(0 - value) : (int64_t)value;
    return 0;
}

static int gw_scan_literal(gw_scan_t *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* After a member or element: skip white space, then consume the closing
 * character (returns 1) or a comma and the white space after it (returns
 * 0). Returns -1 for anything else. */
static int gw_scan_after_item(gw_scan_t *s, char close)
{
    gw_skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        return 1;
    }
    if (*s->p != ',')
        return -1;
    s->p++;
    gw_skip_ws(s);
    return 0;
}

/* Scan the object at s->p, calling on_member (when not NULL) for each
 * member. */
static int gw_scan_object(gw_scan_t *s, int depth, gw_member_fn on_member, void *ctx)
{
    char key[GW_JSON_KEY_MAX];

    s->p++;
    gw_skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        size_t key_len;
        gw_json_kind_t kind;
        int64_t integer = 0;

        if (s->p >= s->end || *s->p != '"' || gw_scan_string(s, key, &key_len) != 0)
            return -1;
        gw_skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        gw_skip_ws(s);
        const char *value = s->p;
        if (gw_scan_value(s, depth + 1, &kind, &integer) != 0)
            return -1;
        if (on_member != NULL)
            on_member(ctx, key, key_len, value, kind, integer);
        int after = gw_scan_after_item(s, '}');
        if (after != 0)
            return after < 0 ? -1 : 0;
    }
}

/* Called for each element of an array once it was scanned. */
typedef void (*gw_element_fn)(void *ctx, const char *value, gw_json_kind_t kind);

/* Scan the array at s->p, calling on_element (when not NULL) for each
 * element; *count receives the number of elements. */
static int gw_scan_array(gw_scan_t *s, int depth, gw_element_fn on_element, void *ctx,
                         int64_t *count)
{
    *count = 0;
    s->p++;
    gw_skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        gw_json_kind_t kind;
        int64_t integer;
        const char *value = s->p;

        if (gw_scan_value(s, depth + 1, &kind, &integer) != 0)
            return -1;
        (*count)++;
        if (on_element != NULL)
            on_element(ctx, value, kind);
        int after = gw_scan_after_item(s, ']');
        if (after != 0)
            return after < 0 ? -1 : 0;
    }
}

static int gw_scan_value(gw_scan_t *s, int depth, gw_json_kind_t *kind, int64_t *integer)
{
    *kind = GW_JSON_OTHER;
    if (depth > GW_JSON_MAX_DEPTH || s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        *kind = GW_JSON_OBJECT;
        return gw_scan_object(s, depth, NULL, NULL);
    case '[':
        *kind = GW_JSON_ARRAY;
        return gw_scan_array(s, depth, NULL, NULL, integer);
    case '"': {
        size_t len;
        *kind = GW_JSON_STRING;
        if (gw_scan_string(s, NULL, &len) != 0)
            return -1;
        *integer = (int64_t)len;
        return 0;
    }
    case 't':
        return gw_scan_literal(s, "true");
    case 'f':
        return gw_scan_literal(s, "false");
    case 'n':
        return gw_scan_literal(s, "null");
    default:
        if (*s->p == '-' || gw_is_digit(*s->p))
            return gw_scan_number(s, kind, integer);
        return -1;
    }
}

static int gw_key_is(const char *key, size_t key_len, const char *name)
{
    size_t n = strlen(name);

    return key_len == n && memcmp(key, name, n) == 0;
}

typedef struct {
    const char *usage;     /* the last "usage" value, when it is an object */
    int64_t prompt;
    int64_t completion;
} gw_usage_ctx_t;

static void gw_on_top_member(void *ctx, const char *key, size_t key_len, const char *value,
                             gw_json_kind_t kind, int64_t integer)
{
    gw_usage_ctx_t *u = ctx;

    (void)integer;
    if (!gw_key_is(key, key_len, "usage"))
        return;
    u->usage = kind == GW_JSON_OBJECT ? value : NULL;
}

static void gw_on_usage_member(void *ctx, const char *key, size_t key_len, const char *value,
                               gw_json_kind_t kind, int64_t integer)
{
    gw_usage_ctx_t *u = ctx;
    int64_t v = kind == GW_JSON_INTEGER ? integer : 0;

    (void)value;
    if (gw_key_is(key, key_len, "prompt_tokens"))
        u->prompt = v;
    else if (gw_key_is(key, key_len, "completion_tokens"))
        u->completion = v;
}

int gw_json_usage(const char *json, size_t len, int64_t *prompt_tokens,
                  int64_t *completion_tokens)
{
    gw_usage_ctx_t u = {0};
    gw_scan_t s = {.p = json, .end = json + len};

    gw_skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || gw_scan_object(&s, 1, gw_on_top_member, &u) != 0)
        return 0;
    gw_skip_ws(&s);
    if (s.p != s.end || u.usage == NULL)
        return 0;

    /* The document is valid, so its usage object scans cleanly again. */
    gw_scan_t inner = {.p = u.usage, .end = json + len};
    if (gw_scan_object(&inner, 2, gw_on_usage_member, &u) != 0)
        return 0;
    *prompt_tokens = u.prompt;
    *completion_tokens = u.completion;
    return 1;
}

/* ---- streamed completion chunks ---- */

typedef struct {
    const char *end;       /* the document's end, for rescans */
    const char *usage;     /* the last "usage" value, when it is an object */
    const char *choices;   /* the last "choices" value, when it is an array */
    int64_t num_choices;
    const char *delta;     /* in a choice: the last "delta", when an object */
    int text;              /* in a choice: the last "text" is a non-empty string */
    int content;           /* in a delta: the last "content" is a non-empty string */
    int has_content;
} gw_chunk_ctx_t;

static void gw_on_chunk_member(void *ctx, const char *key, size_t key_len, const char *value,
                               gw_json_kind_t kind, int64_t integer)
{
    gw_chunk_ctx_t *c = ctx;

    if (gw_key_is(key, key_len, "usage")) {
        c->usage = kind == GW_JSON_OBJECT ? value : NULL;
    } else if (gw_key_is(key, key_len, "choices")) {
        c->choices = kind == GW_JSON_ARRAY ? value : NULL;
        c->num_choices = kind == GW_JSON_ARRAY ? integer : 0;
    }
}

static void gw_on_delta_member(void *ctx, const char *key, size_t key_len, const char *value,
                               gw_json_kind_t kind, int64_t integer)
{
    gw_chunk_ctx_t *c = ctx;

    (void)value;
    if (gw_key_is(key, key_len, "content"))
        c->content = kind == GW_JSON_STRING && integer > 0;
}

static void gw_on_choice_member(void *ctx, const char *key, size_t key_len, const char *value,
                                gw_json_kind_t kind, int64_t integer)
{
    gw_chunk_ctx_t *c = ctx;

    if (gw_key_is(key, key_len, "delta"))
        c->delta = kind == GW_JSON_OBJECT ? value : NULL;
    else if (gw_key_is(key, key_len, "text"))
        c->text = kind == GW_JSON_STRING && integer > 0;
}

/* One element of "choices". The document is known to be valid, so the
 * rescans here cannot fail. */
static void gw_on_choice(void *ctx, const char *value, gw_json_kind_t kind)
{
    gw_chunk_ctx_t *c = ctx;

    if (kind != GW_JSON_OBJECT || c->has_content)
        return;
    c->delta = NULL;
    c->text = 0;
    c->content = 0;
    gw_scan_t choice = {.p = value, .end = c->end};
    gw_scan_object(&choice, 3, gw_on_choice_member, c);
    if (c->delta != NULL) {
        gw_scan_t delta = {.p = c->delta, .end = c->end};
        gw_scan_object(&delta, 4, gw_on_delta_member, c);
    }
    c->has_content = c->text || c->content;
}

int gw_json_chunk(const char *json, size_t len, gw_json_chunk_t *out)
{
    gw_chunk_ctx_t c = {.end = json + len};
    gw_scan_t s = {.p = json, .end = json + len};

    memset(out, 0, sizeof(*out));
    gw_skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || gw_scan_object(&s, 1, gw_on_chunk_member, &c) != 0)
        return 0;
    gw_skip_ws(&s);
    if (s.p != s.end)
        return 0;

    if (c.usage != NULL) {
        gw_usage_ctx_t u = {0};
        gw_scan_t inner = {.p = c.usage, .end = c.end};
        gw_scan_object(&inner, 2, gw_on_usage_member, &u);
        out->has_usage = 1;
        out->prompt_tokens = u.prompt;
        out->completion_tokens = u.completion;
    }
    if (c.choices != NULL) {
        int64_t count;
        gw_scan_t choices = {.p = c.choices, .end = c.end};
        gw_scan_array(&choices, 2, gw_on_choice, &c, &count);
        out->choices_empty = c.num_choices == 0;
        out->has_content = c.has_content;
    }
    return 1;
}
