/* API: web login and logout. A login checks a password or an api token and
 * starts a session whose cookie the browser sends from then on. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"

/* Random bytes in a session cookie value. */
#define API_SESSION_BYTES 32

/* The reply to a failed login waits this long, so that guessing is slow
 * and a wrong password and an unknown user take the same time.
 * NOTE: logins are not limited per user or address, so parallel guesses
 * are bounded only by the cost of the password hash. */
#define API_LOGIN_FAIL_DELAY_MS 500

typedef struct {
    uv_work_t work;
    uv_timer_t timer;
    server_t *srv;
    http_exchange_t *ex;
    int exchange_gone;
    int verified;                 /* the password matched */
    char name[65];
    char hash[128];               /* the user's password hash, "" when there is none */
    char *password;
} api_login_job_t;

static char api_dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t api_dummy_once = PTHREAD_ONCE_INIT;

/* A hash of a random password, checked when the user is unknown, so that
 * the check takes as long as for a real user. */
static void api_dummy_hash_init(void)
{
    char password[33];

    token_random_chars(password, sizeof(password) - 1, TOKEN_ALPHABET_HEX);
    if (crypto_pwhash_str(api_dummy_hash, password, strlen(password),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        api_dummy_hash[0] = '\0';
}

/* Send body with the session cookie header (NULL: clear the cookie). */
static void api_reply_with_cookie(http_exchange_t *ex, int status, json_t *body,
                                  const char *cookie, int64_t max_age_s)
{
    char headers[256];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (text == NULL) {
        http_respond_error(ex, 500, "internal", "out of memory building the response", NULL);
        return;
    }
    snprintf(headers, sizeof(headers),
             "Set-Cookie: " API_SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; "
             "Max-Age=%lld\r\nCache-Control: no-store\r\n",
             cookie ? cookie : "", (long long)(cookie ? max_age_s : 0));
    http_respond(ex, status, "application/json", headers, text, strlen(text));
    sodium_memzero(headers, sizeof(headers));
    free(text);
}

/* Start a session for user (token: the login token, or NULL) and reply 200
 * with its cookie. */
static void api_login_succeed(server_t *srv, http_exchange_t *ex, const store_user_t *user,
                              const store_token_t *token)
{
    unsigned char random[API_SESSION_BYTES];
    char cookie[sodium_base64_ENCODED_LEN(API_SESSION_BYTES,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    store_session_t session = {.created_at = clock_wall_ms()};

    randombytes_buf(random, sizeof(random));
    sodium_bin2base64(cookie, sizeof(cookie), random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof(random));
    token_hash_hex(cookie, session.hash, sizeof(session.hash));
    snprintf(session.user, sizeof(session.user), "%s", user->name);
    session.expires_at = session.created_at + API_SESSION_TTL_MS;
    if (token != NULL) {
        snprintf(session.token_id, sizeof(session.token_id), "%s", token->id);
        if (token->expires_at < session.expires_at)
            session.expires_at = token->expires_at;
    }

    srv->store->ops->session_prune(srv->store, session.created_at);
    if (srv->store->ops->session_insert(srv->store, &session) != STORE_OK) {
        log_error(SERVER_LOG, "failed to save a session of user %s: %s", user->name,
                  store_error(srv->store));
        http_respond_error(ex, 500, "internal", "cannot start the session; see the server log",
                           NULL);
        sodium_memzero(cookie, sizeof(cookie));
        return;
    }
    log_info(SERVER_LOG, "user %s logged in to the web UI from %s with %s%s", user->name,
             http_exchange_peer(ex), token ? "api token " : "a password", token ? token->id : "");

    int64_t max_age = (session.expires_at - session.created_at) / 1000;
    api_reply_with_cookie(ex, 200,
                          json_pack("{s:s, s:b, s:I}", "user", user->name, "admin", user->admin,
                                    "expires_at", (json_int_t)session.expires_at),
                          cookie, max_age);
    sodium_memzero(cookie, sizeof(cookie));
}

static void api_login_job_free(api_login_job_t *job)
{
    if (job->password != NULL) {
        sodium_memzero(job->password, strlen(job->password));
        free(job->password);
    }
    free(job);
}

static void api_login_on_timer_closed(uv_handle_t *handle)
{
    api_login_job_free(handle->data);
}

static void api_login_on_delay(uv_timer_t *timer)
{
    api_login_job_t *job = timer->data;

    if (!job->exchange_gone) {
        http_exchange_on_close(job->ex, NULL, NULL);
        http_respond_error(job->ex, 401, "unauthorized",
                           job->password ? "invalid user name or password"
                                         : "invalid token: it is unknown, revoked or expired, "
                                           "or not an api-scope token",
                           NULL);
    }
    uv_close((uv_handle_t *)&job->timer, api_login_on_timer_closed);
}

/* Reply to a failed login after the fixed delay, then free the job. */
static void api_login_fail_later(api_login_job_t *job)
{
    uv_timer_init(&job->srv->loop, &job->timer);
    job->timer.data = job;
    uv_timer_start(&job->timer, api_login_on_delay, API_LOGIN_FAIL_DELAY_MS, 0);
}

static void api_login_on_close(http_exchange_t *ex, int aborted, void *user)
{
    api_login_job_t *job = user;
    (void)ex, (void)aborted;

    job->exchange_gone = 1;
}

static void api_login_verify(uv_work_t *work)
{
    api_login_job_t *job = work->data;
    size_t len = strlen(job->password);

    if (job->hash[0] != '\0') {
        job->verified = crypto_pwhash_str_verify(job->hash, job->password, len) == 0;
        return;
    }
    /* An unknown user never logs in, so the result is dropped. */
    pthread_once(&api_dummy_once, api_dummy_hash_init);
    if (api_dummy_hash[0] != '\0') {
        int dropped = crypto_pwhash_str_verify(api_dummy_hash, job->password, len);
        (void)dropped;
    }
    job->verified = 0;
}

static void api_login_verified(uv_work_t *work, int status)
{
    api_login_job_t *job = work->data;
    store_user_t user;

    if (job->exchange_gone) {
        api_login_job_free(job);
        return;
    }
    /* Read the user again: it may have been deleted during the check. */
    if (status == 0 && job->verified &&
        job->srv->store->ops->user_get(job->srv->store, job->name, &user) == STORE_OK) {
        http_exchange_on_close(job->ex, NULL, NULL);
        api_login_succeed(job->srv, job->ex, &user, NULL);
        api_login_job_free(job);
        return;
    }
    log_info(SERVER_LOG, "failed web login from %s: wrong password or unknown user",
             http_exchange_peer(job->ex));
    api_login_fail_later(job);
}

static api_login_job_t *api_login_job_new(api_ctx_t *ctx)
{
    api_login_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->srv = ctx->srv;
    job->ex = ctx->ex;
    job->work.data = job;
    http_exchange_on_close(ctx->ex, api_login_on_close, job);
    return job;
}

static int api_login_password(api_ctx_t *ctx, api_error_t *err, const char *name,
                              const char *password)
{
    store_user_t user;
    api_login_job_t *job = api_login_job_new(ctx);

    if (job == NULL || (job->password = strdup(password)) == NULL) {
        if (job != NULL)
            http_exchange_on_close(ctx->ex, NULL, NULL);
        free(job);
        return api_fail(err, 500, "internal", NULL, "out of memory checking a login");
    }
    snprintf(job->name, sizeof(job->name), "%s", name);
    int rc = ctx->srv->store->ops->user_get(ctx->srv->store, name, &user);
    if (rc == STORE_OK && user.has_password)
        snprintf(job->hash, sizeof(job->hash), "%s", user.password_hash);
    sodium_memzero(&user, sizeof(user));
    uv_queue_work(&ctx->srv->loop, &job->work, api_login_verify, api_login_verified);
    return 0;
}

static int api_login_token(api_ctx_t *ctx, api_error_t *err, const char *text)
{
    char hash[TOKEN_HASH_HEX_LEN + 1];
    store_token_t token;
    store_user_t user;

    token_hash_hex(text, hash, sizeof(hash));
    int rc = ctx->srv->store->ops->token_find_hash(ctx->srv->store, hash, &token);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "checking a token");
    if (rc == STORE_OK && !token.revoked && token.expires_at > clock_wall_ms() &&
        strcmp(token.scope, "api") == 0 &&
        ctx->srv->store->ops->user_get(ctx->srv->store, token.user, &user) == STORE_OK) {
        api_login_succeed(ctx->srv, ctx->ex, &user, &token);
        return 0;
    }

    api_login_job_t *job = api_login_job_new(ctx);
    if (job == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory checking a login");
    log_info(SERVER_LOG, "failed web login from %s: invalid token", http_exchange_peer(ctx->ex));
    api_login_fail_later(job);
    return 0;
}

int api_login(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"name", API_JSON_STRING, 0},
        {"password", API_JSON_STRING, 0},
        {"token", API_JSON_STRING, 0},
        {NULL, 0, 0},
    };

    if (!api_session_request_is_safe(ctx->req))
        return api_fail(err, 415, "unsupported_media_type", NULL,
                        "a login needs the header Content-Type: application/json");
    if (api_require_object(ctx, err) != 0 || api_check_body(ctx, err, fields) != 0)
        return -1;
    const char *name = api_body_string(ctx, "name");
    const char *password = api_body_string(ctx, "password");
    const char *token = api_body_string(ctx, "token");

    if (token != NULL && (name != NULL || password != NULL))
        return api_fail(err, 400, "bad_request", "token",
                        "send either \"token\" or \"name\" and \"password\", not both");
    if (token != NULL)
        return api_login_token(ctx, err, token);
    if (name == NULL || password == NULL)
        return api_fail(err, 400, "bad_request", name ? "password" : "name",
                        "a login needs \"name\" and \"password\", or \"token\" (an api token)");
    return api_login_password(ctx, err, name, password);
}

int api_logout(api_ctx_t *ctx, api_error_t *err)
{
    char cookie[API_SESSION_COOKIE_MAX], hash[TOKEN_HASH_HEX_LEN + 1];
    store_session_t session;

    /* Without a cookie there is nothing to end, and the reply still clears
     * whatever the browser holds. */
    if (api_session_cookie(ctx->req, cookie, sizeof(cookie))) {
        token_hash_hex(cookie, hash, sizeof(hash));
        sodium_memzero(cookie, sizeof(cookie));
        int rc = ctx->srv->store->ops->session_find(ctx->srv->store, hash, &session);
        if (rc == STORE_OK)
            rc = ctx->srv->store->ops->session_delete(ctx->srv->store, hash);
        if (rc == STORE_ERROR)
            return api_fail_store(ctx, err, "ending a session");
        if (rc == STORE_OK)
            log_info(SERVER_LOG, "user %s logged out of the web UI", session.user);
    }
    api_reply_with_cookie(ctx->ex, 200, json_pack("{s:b}", "logged_out", 1), NULL, 0);
    return 0;
}
