/* Recognising the start-up milestones of a NIM (and of vLLM inside it) in
 * console lines, so that the `loading` reason shows how far the start has
 * come: profile selected, model files downloading, weights loaded,
 * serving. Works for any runtime. */
#ifndef NIMDECK_AGENT_AGENT_MILESTONE_H
#define NIMDECK_AGENT_AGENT_MILESTONE_H

#include <stddef.h>

/* Maximum length of a reason, in bytes, without the NUL. */
#define AGENT_MILESTONE_MAX 160

/* When line (masked, not NUL-terminated) is a milestone, write it from its
 * known phrase on ("Selected profile: ...") into out, or for a download
 * progress line the line without a "LEVEL ... file.py:206] " log prefix.
 * The text is cut to AGENT_MILESTONE_MAX bytes at a UTF-8 boundary, and 1
 * is returned. Returns 0 for any other line. Recognised phrases:
 * "Selected profile:", "Preparing model workspace", "Model workspace is now
 * ready", "Loading model weights took", "Loading weights took", "Serving
 * endpoints", "Uvicorn running on"; and download progress: a tqdm bar
 * ("45%|") or a line with "ownload" and a percentage. */
int agent_milestone_match(const char *line, size_t len, char *out, size_t size);

#endif
