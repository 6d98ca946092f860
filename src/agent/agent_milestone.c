/* NIM start-up milestones in console lines. */
#include "agent/agent_milestone.h"

#include <ctype.h>
#include <string.h>

/* Phrases that NIM LLM containers and the vLLM inside them log at start-up,
 * in that order. `nimdeck sim` logs the same ones. */
static const char *const agent_milestones[] = {
    "Selected profile:",
    "Preparing model workspace",
    "Model workspace is now ready",
    "Loading model weights took",
    "Loading weights took",
    "Serving endpoints",
    "Uvicorn running on",
    NULL,
};

/* Skip a log prefix ending in "] " near the start, as NIM's
 * "INFO 08-22 17:12:39.469 ngc_injector.py:206] " and vLLM's. */
static size_t agent_milestone_skip_prefix(const char *line, size_t len)
{
    size_t limit = len < 100 ? len : 100;

    if (len == 0 || !isupper((unsigned char)line[0]))
        return 0;
    for (size_t i = 0; i + 1 < limit; i++) {
        if (line[i] == ']' && line[i + 1] == ' ')
            return i + 2;
    }
    return 0;
}

/* A download progress line: tqdm's "45%|####" bar, or a line that names a
 * download and a percentage. */
static int agent_milestone_is_download(const char *text, size_t len)
{
    const char *percent = memchr(text, '%', len);

    if (percent == NULL || percent == text || !isdigit((unsigned char)percent[-1]))
        return 0;
    if ((size_t)(percent - text) + 1 < len && percent[1] == '|')
        return 1;
    return memmem(text, len, "ownload", 7) != NULL;
}

/* Find the start of the milestone in text: its known phrase, so that any
 * log prefix before it is dropped, or a download line after its "] "
 * prefix. Returns NULL for a line that is no milestone. */
static const char *agent_milestone_find(const char *text, size_t len)
{
    for (size_t i = 0; agent_milestones[i] != NULL; i++) {
        const char *at = memmem(text, len, agent_milestones[i], strlen(agent_milestones[i]));
        if (at != NULL)
            return at;
    }
    if (agent_milestone_is_download(text, len))
        return text + agent_milestone_skip_prefix(text, len);
    return NULL;
}

int agent_milestone_match(const char *line, size_t len, char *out, size_t size)
{
    const char *text = agent_milestone_find(line, len);
    size_t n, whole;

    if (size == 0 || text == NULL)
        return 0;
    whole = len - (size_t)(text - line);
    while (whole > 0 && isspace((unsigned char)text[whole - 1]))
        whole--;
    n = whole;
    if (n > AGENT_MILESTONE_MAX)
        n = AGENT_MILESTONE_MAX;
    if (n > size - 1)
        n = size - 1;
    /* Do not cut inside a UTF-8 sequence: back up over continuation bytes. */
    if (n < whole) {
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, text, n);
    out[n] = '\0';
    return 1;
}
