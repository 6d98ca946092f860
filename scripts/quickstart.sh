#!/usr/bin/env bash
# From a fresh Debian 12 machine to a served model: install the packages,
# build, start `nimdeck up` in the background, launch the NIM simulator, and
# print its endpoint, a gateway token and a curl command to paste.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${NIMDECK_DATA:-./nimdeck-data}
api=${NIMDECK_API:-127.0.0.1:8470}
gateway=${NIMDECK_GATEWAY:-127.0.0.1:8471}
export NIMDECK_SERVER="http://$api"
export NIMDECK_DATA="$data"
nimdeck=build/nimdeck

echo "== installing packages (Debian 12)"
scripts/deps.sh

echo "== building"
# The web UI's npm packages (uPlot) go into the binary.
[ -d web/node_modules/uplot ] || (cd web && npm ci --no-audit --no-fund --loglevel=error)
make -j"$(nproc)" >/dev/null
echo "built $nimdeck"

if curl -fsS "$NIMDECK_SERVER/api/v1/health" >/dev/null 2>&1; then
    echo "== nimdeck is already running at $NIMDECK_SERVER"
else
    echo "== starting nimdeck up (log: nimdeck-up.log)"
    nohup "$nimdeck" up --data "$data" --api "$api" --gateway "$gateway" >nimdeck-up.log 2>&1 &
    echo $! >nimdeck-up.pid
    for _ in $(seq 1 100); do
        curl -fsS "$NIMDECK_SERVER/api/v1/health" >/dev/null 2>&1 && break
        if ! kill -0 "$(cat nimdeck-up.pid)" 2>/dev/null; then
            echo "nimdeck up exited; its log:"; cat nimdeck-up.log; exit 1
        fi
        sleep 0.1
    done
    echo "nimdeck up is running as pid $(cat nimdeck-up.pid)"
fi

# A second run reuses the simulator the first one launched.
id=$("$nimdeck" apps list --json |
     jq -r '[.apps[] | select(.name == "nim-sim" and (.status == "active" or .status == "idle"))][0].id // empty')
if [ -n "$id" ]; then
    echo "== reusing the running simulator, instance $id"
else
    echo "== launching examples/nim-sim.json"
    id=$("$nimdeck" launch --config examples/nim-sim.json --json | jq -r .id)
    [ -n "$id" ] || { echo "launch failed"; exit 1; }
    echo "instance $id queued"
fi

last=""
for _ in $(seq 1 600); do
    status=$("$nimdeck" apps show "$id" --json | jq -r .status)
    if [ "$status" != "$last" ]; then
        echo "instance $id: $status ($("$nimdeck" apps show "$id" --json | jq -r '.status_reason // ""'))"
        last=$status
    fi
    case "$status" in
        active|idle) break ;;
        failed|stopped) "$nimdeck" apps show "$id"; exit 1 ;;
    esac
    sleep 0.5
done

endpoint=$("$nimdeck" apps show "$id" --json | jq -r .endpoint)
token=$("$nimdeck" tokens create --days 7)

cat <<TXT

The simulated NIM is served.

  endpoint: $endpoint
  token:    $token   (gateway scope, 7 days; shown only here)

Call it:

  curl -sS $endpoint/chat/completions \\
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" \\
    -d '{"model": "meta/llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32}'

The commands below use the server at $NIMDECK_SERVER and the admin token in
$NIMDECK_DATA/admin-token. In another shell, run this first unless both are
the defaults:
  export NIMDECK_SERVER=$NIMDECK_SERVER NIMDECK_DATA=$(cd "$NIMDECK_DATA" && pwd)

Watch it:   $nimdeck apps show $id      $nimdeck apps logs $id --follow
Stop it:    $nimdeck apps stop $id      (it also stops after 1 hour without requests)
Shut down:  kill \$(cat nimdeck-up.pid)
TXT
