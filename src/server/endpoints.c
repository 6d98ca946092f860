/* The served model's name and the CSV form of the Model Endpoints list. */
#include "server/endpoints.h"

#include <string.h>

const char *endpoints_model(const json_t *config)
{
    const char *served = json_string_value(
        json_object_get(json_object_get(config, "env"), "NIM_SERVED_MODEL_NAME"));
    const json_t *command = json_object_get(config, "command");
    size_t i;
    const json_t *arg;

    if (served != NULL && served[0] != '\0')
        return served;
    json_array_foreach(command, i, arg) {
        const char *text = json_string_value(arg);
        if (text == NULL)
            continue;
        if (strncmp(text, "--model=", 8) == 0 && text[8] != '\0')
            return text + 8;
        const char *next = json_string_value(json_array_get(command, i + 1));
        if (strcmp(text, "--model") == 0 && next != NULL && next[0] != '\0')
            return next;
    }

    const char *image = json_string_value(json_object_get(config, "image"));
    if (image != NULL && image[0] != '\0')
        return image;
    const char *name = json_string_value(json_object_get(config, "name"));
    return name ? name : "";
}

int endpoints_csv_field(buf_t *out, const char *text)
{
    int formula = strchr("=+-@\t", text[0]) != NULL && text[0] != '\0';
    int quoted = strpbrk(text, ",\"\r\n") != NULL;

    if (quoted && buf_append_str(out, "\"") != 0)
        return -1;
    if (formula && buf_append_str(out, "'") != 0)
        return -1;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '"' && buf_append_str(out, "\"") != 0)
            return -1;
        if (buf_append(out, p, 1) != 0)
            return -1;
    }
    return quoted ? buf_append_str(out, "\"") : 0;
}

/* Append a number, or nothing for null. */
static int endpoints_csv_number(buf_t *out, const json_t *value)
{
    if (json_is_integer(value))
        return buf_printf(out, "%lld", (long long)json_integer_value(value));
    if (json_is_real(value))
        return buf_printf(out, "%.2f", json_real_value(value));
    return 0;
}

static int endpoints_csv_row(buf_t *out, const char *section, const json_t *entry)
{
    const json_t *ids = json_object_get(entry, "instances");
    const char *route = json_string_value(json_object_get(entry, "route"));
    const json_t *id;
    buf_t joined = BUF_INIT;
    size_t i;
    int rc = 0;

    json_array_foreach(ids, i, id) {
        if (buf_printf(&joined, "%s%s", i ? " " : "", json_string_value(id)) != 0)
            rc = -1;
    }
    const char *texts[] = {
        section,
        json_string_value(json_object_get(entry, "path")),
        json_string_value(json_object_get(entry, "endpoint")),
        json_string_value(json_object_get(entry, "model")),
        route ? route : "",
        joined.data ? joined.data : "",
        json_string_value(json_object_get(entry, "status")),
    };
    for (size_t t = 0; rc == 0 && t < sizeof(texts) / sizeof(texts[0]); t++) {
        if ((t > 0 && buf_append_str(out, ",") != 0) ||
            endpoints_csv_field(out, texts[t] ? texts[t] : "") != 0)
            rc = -1;
    }
    buf_free(&joined);

    static const char *const numbers[] = {"uptime_seconds", "requests", "requests_per_minute",
                                          "latency_ms_mean"};
    for (size_t n = 0; rc == 0 && n < sizeof(numbers) / sizeof(numbers[0]); n++) {
        if (buf_append_str(out, ",") != 0 ||
            endpoints_csv_number(out, json_object_get(entry, numbers[n])) != 0)
            rc = -1;
    }
    return rc == 0 ? buf_append_str(out, "\r\n") : -1;
}

int endpoints_csv(buf_t *out, const json_t *response)
{
    static const char *const sections[] = {"endpoints", "loading"};

    if (buf_append_str(out, "section,path,endpoint,model,route,instances,status,"
                            "uptime_seconds,requests,requests_per_minute,latency_ms_mean\r\n") !=
        0)
        return -1;
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        const json_t *entry;
        size_t i;
        json_array_foreach(json_object_get(response, sections[s]), i, entry) {
            if (endpoints_csv_row(out, sections[s], entry) != 0)
                return -1;
        }
    }
    return 0;
}
