/* API: an instance's lease again, for the agent that runs it. After an
 * agent restart, the agent adopts the containers it had started and needs
 * their secrets again to mask their console lines. */
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"

/* Statuses in which an agent may run the instance. A queued instance
 * counts once it is leased (the caller checks that it is leased to this
 * agent): the agent may have started its container and then died before
 * its first loading report, and the restarted agent adopts it. */
static int api_lease_status_running(const char *status)
{
    return strcmp(status, "queued") == 0 || strcmp(status, "loading") == 0 ||
           strcmp(status, "active") == 0 || strcmp(status, "idle") == 0 ||
           strcmp(status, "stopping") == 0;
}

/* Check that the instance runs on the agent whose id is the query's
 * "agent". Returns 0, or -1 with err set. */
static int api_lease_check_agent(api_ctx_t *ctx, api_error_t *err, const store_instance_t *inst)
{
    char agent_id[64], name[65];
    int rc;

    if (!api_query(ctx, "agent", agent_id, sizeof(agent_id)) || agent_id[0] == '\0')
        return api_fail(err, 400, "bad_request", NULL,
                        "missing query parameter agent: give the id of the agent that runs "
                        "instance %s (from POST /api/v1/agents)", inst->id);
    rc = ctx->srv->store->ops->agent_get(ctx->srv->store, agent_id, name, sizeof(name), NULL);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL,
                        "agent %s not found; register it first (POST /api/v1/agents)", agent_id);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading an agent");
    if (strcmp(inst->agent, name) != 0)
        return api_fail(err, 409, "conflict", NULL,
                        "instance %s does not run on agent %s; only its own agent may fetch "
                        "its lease", inst->id, name);
    if (!api_lease_status_running(inst->status))
        return api_fail(err, 409, "conflict", NULL,
                        "instance %s is %s; a lease is given again only while its agent runs it "
                        "(queued and leased to it, loading, active, idle or stopping)",
                        inst->id, inst->status);
    return 0;
}

int api_apps_lease(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    char reason[512];
    json_t *lease;

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_ADMIN, &inst) != 0)
        return -1;
    if (api_lease_check_agent(ctx, err, &inst) != 0) {
        store_instance_clear(&inst);
        return -1;
    }
    lease = api_build_lease(ctx->srv, &inst, reason, sizeof(reason));
    if (lease == NULL) {
        api_fail(err, 409, "conflict", NULL, "the lease of instance %s cannot be built: %s",
                 inst.id, reason);
        store_instance_clear(&inst);
        return -1;
    }
    json_object_set_new(lease, "status", json_string(inst.status));
    store_instance_clear(&inst);
    api_reply(ctx, 200, lease);
    return 0;
}
