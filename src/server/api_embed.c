/* API: what an embedded plot shows besides its metrics. The one endpoint
 * an embed token may call apart from the instance's metrics. */
#include "server/server_internal.h"

int api_embed_show(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    api_reply(ctx, 200,
              json_pack("{s:s, s:s, s:s}", "id", inst.id, "name", inst.name, "status",
                        inst.status));
    store_instance_clear(&inst);
    return 0;
}
