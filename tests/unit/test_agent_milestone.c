/* Unit tests for recognising NIM start-up milestones in console lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_milestone.h"

static int match(const char *line, char *out)
{
    return agent_milestone_match(line, strlen(line), out, AGENT_MILESTONE_MAX + 1);
}

static void milestone_nim_lines(void **state)
{
    static const struct {
        const char *line;
        const char *reason;
    } cases[] = {
        {"INFO 08-22 17:12:39.469 ngc_injector.py:206] Selected profile: 1936 (vllm-bf16-tp1)",
         "Selected profile: 1936 (vllm-bf16-tp1)"},
        {"INFO 2026-12-04T22:54:17.741Z nimdeck-sim: Selected profile: sim0000 (simulator)",
         "Selected profile: sim0000 (simulator)"},
        {"INFO 08-22 17:12:40.125 ngc_injector.py:245] Preparing model workspace. This step "
         "might download additional files to run the model.",
         "Preparing model workspace. This step might download additional files to run the model."},
        {"INFO 08-22 17:15:30 ngc_injector.py:260] Model workspace is now ready. It took 170.4 "
         "seconds",
         "Model workspace is now ready. It took 170.4 seconds"},
        {"INFO 08-22 17:16:00 model_runner.py:1008] Loading model weights took 14.9595 GB",
         "Loading model weights took 14.9595 GB"},
        {"INFO 08-22 17:16:00 worker.py:1] Loading weights took 14.99 GB   ",
         "Loading weights took 14.99 GB"},
        {"INFO 08-22 17:16:20 api_server.py:652] Serving endpoints:", "Serving endpoints:"},
        {"INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
         "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)"},
        {"model-00001-of-00004.safetensors:  45%|####5     | 2.25G/5.00G [00:10<00:12]",
         "model-00001-of-00004.safetensors:  45%|####5     | 2.25G/5.00G [00:10<00:12]"},
        {"INFO 08-22 17:13:00 hub.py:1] Downloading model files: 12% done",
         "Downloading model files: 12% done"},
    };
    char out[AGENT_MILESTONE_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 0, sizeof(out));
        assert_int_equal(match(cases[i].line, out), 1);
        assert_string_equal(out, cases[i].reason);
    }
}

static void milestone_other_lines(void **state)
{
    static const char *const lines[] = {
        "",
        "INFO 08-22 17:12:39 ngc_profile.py:222] Running NIM without LoRA.",
        "GPU KV cache usage: 45% of 80 GB",
        "downloads folder is /opt/nim/.cache",
        "100% sure",
    };
    char out[AGENT_MILESTONE_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_int_equal(match(lines[i], out), 0);
}

static void milestone_cut_at_utf8_boundary(void **state)
{
    char line[400], out[AGENT_MILESTONE_MAX + 1];
    size_t len = 0;

    (void)state;
    len += (size_t)snprintf(line, sizeof(line), "Selected profile: ");
    while (len + 2 < sizeof(line) - 1) {
        line[len++] = (char)0xC3; /* "é" */
        line[len++] = (char)0xA9;
    }
    line[len] = '\0';
    assert_int_equal(agent_milestone_match(line, len, out, sizeof(out)), 1);
    assert_true(strlen(out) <= AGENT_MILESTONE_MAX);
    /* "Selected profile: " is 18 bytes, so whole characters end on an even length. */
    assert_int_equal(strlen(out) % 2, 0);
    assert_int_equal((unsigned char)out[strlen(out) - 1], 0xA9);
}

static void milestone_small_buffer(void **state)
{
    char out[12];
    const char *line = "Serving endpoints: GET /v1/models";

    (void)state;
    assert_int_equal(agent_milestone_match(line, strlen(line), out, sizeof(out)), 1);
    assert_string_equal(out, "Serving end");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(milestone_nim_lines),
        cmocka_unit_test(milestone_other_lines),
        cmocka_unit_test(milestone_cut_at_utf8_boundary),
        cmocka_unit_test(milestone_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
