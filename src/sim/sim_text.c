/* Deterministic pseudo-text: the same prompt always gets the same reply. */
#include "sim/sim_text.h"

#include <ctype.h>

static const char *const sim_words[] = {
    "simulated", "model", "output", "token",   "stream",   "answer",  "request", "reply",
    "latency",   "gateway", "queue", "agent",  "server",   "nimdeck", "text",    "word",
    "quick",     "steady", "plain",  "sample", "signal",   "value",   "result",  "context",
    "prompt",    "window", "cache",  "memory", "profile",  "engine",  "batch",   "layer",
    "the",       "a",      "of",     "and",    "to",       "in",      "is",      "for",
    "with",      "on",     "this",   "that",   "from",     "by",      "as",      "at",
    "not",       "real",   "only",   "test",   "demo",     "backend", "serving", "endpoint",
    "ready",     "health", "metric", "usage",  "complete", "chunk",   "event",   "line",
};

#define SIM_WORD_COUNT (sizeof(sim_words) / sizeof(sim_words[0]))

uint64_t sim_text_hash(uint64_t hash, const void *data, size_t len)
{
    const unsigned char *bytes = data;

    for (size_t i = 0; i < len; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

uint64_t sim_text_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int sim_text_natural_length(uint64_t seed)
{
    return 24 + (int)(sim_text_mix(seed ^ 0x5eedULL) % 17);
}

int sim_text_append_token(uint64_t seed, int index, int last, buf_t *out)
{
    const char *word = sim_words[sim_text_mix(seed + (uint64_t)index) % SIM_WORD_COUNT];

    if (index > 0 && buf_append_str(out, " ") != 0)
        return -1;
    if (buf_append_str(out, word) != 0)
        return -1;
    if (last && buf_append_str(out, ".") != 0)
        return -1;
    return 0;
}

int sim_text_count_words(const char *text, size_t len)
{
    int words = 0;
    int in_word = 0;

    for (size_t i = 0; i < len; i++) {
        int space = isspace((unsigned char)text[i]);

        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}
