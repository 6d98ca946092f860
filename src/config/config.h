/* Instance configuration: validation, dotted-key edits (--set/--unset),
 * secret detection and export. The configuration is a jansson object. */
#ifndef NIMDECK_CONFIG_CONFIG_H
#define NIMDECK_CONFIG_CONFIG_H

#include <jansson.h>
#include <stddef.h>

/* Size limits that keep a configuration small enough for the API, the web
 * UI and a process's environment block (execve fails with E2BIG, "argument
 * list too long", when the environment and arguments pass ARG_MAX). */
#define CONFIG_TAGS_MAX 64                    /* elements of "tags" */
#define CONFIG_TAG_CHARS_MAX 64               /* characters of one tag */
#define CONFIG_ENV_MAX 256                    /* variables in "env" */
#define CONFIG_ENV_VALUE_MAX (32 * 1024)      /* bytes of one env value */
#define CONFIG_ENV_TOTAL_MAX (256 * 1024)     /* bytes of all NAME=value\0 together */
#define CONFIG_GPUS_IDS_MAX 256               /* device ids in a "gpus" array */

typedef struct {
    char field[128];    /* the key at fault, dotted ("env.NGC_API_KEY"), or "" */
    char message[512];  /* names the key and the fix */
} config_error_t;

/* Validate cfg against the schema and fill in defaults for absent optional
 * keys. The checks cover unknown keys, types, ranges and the required fields:
 * name, project and runtime, plus image when runtime is "docker" and a
 * non-empty command when runtime is "process". The defaults are version 1,
 * queue "default", route null, idle_time_limit_hours null, env {}, tags [],
 * gpus 0, port null, health_path "/v1/health/ready", and docker {} for
 * runtime docker. Returns 0, or -1 with err filled. The texts in err are
 * valid UTF-8. */
int config_validate(json_t *cfg, config_error_t *err);

/* Apply "KEY=VALUE" (dots address nested objects, creating them; VALUE is
 * parsed as JSON when it parses, else taken as a string). A key through an
 * array ("tags.0") is rejected, because arrays are set whole. Returns 0 or
 * -1. */
int config_apply_set(json_t *cfg, const char *assignment, config_error_t *err);

/* Split "KEY=VALUE" into key (copied into key[0..key_size)) and a new JSON
 * value read as config_apply_set reads it. Returns 0 with *value owned by
 * the caller, or -1 with err filled and *value NULL. */
int config_parse_assignment(const char *assignment, char *key, size_t key_size, json_t **value,
                            config_error_t *err);

/* Set or remove one dotted key with an already built value (stolen ref).
 * Both reject a key through an array, or through "tags" or "command" when
 * absent, with err naming the array and how to set it whole. */
int config_set_path(json_t *cfg, const char *dotted, json_t *value, config_error_t *err);
int config_unset_path(json_t *cfg, const char *dotted, config_error_t *err);

/* True when an env key names a secret: it contains KEY, TOKEN, SECRET,
 * PASSWORD or CREDENTIAL, case-insensitively. */
int config_is_secret_name(const char *name);

/* A deep copy of cfg with every secret env value replaced by null (unless
 * include_secrets). */
json_t *config_export(const json_t *cfg, int include_secrets);

/* True when the image is an NGC NIM ("nvcr.io/nim/..."), which needs
 * NGC_API_KEY in env or the owner's vault. */
int config_image_needs_ngc_key(const char *image);

#endif
