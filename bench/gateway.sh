#!/usr/bin/env bash
# Benchmark the nimdeck gateway against nginx and against the backend itself,
# on 127.0.0.1 only, in one bounded run that stops everything it started.
#
#   make bench && bench/gateway.sh [--build DIR] [--duration S] [--conns "2 64"]
#                                  [--rounds N] [--streams N] [--hold N] [--hold-s S]
#                                  [--cases "load alone stream hold"]
#
# Targets, all in front of one bench backend (bench/backend.c):
#   direct   the backend itself
#   nginx    nginx with one worker as a keep-alive reverse proxy
#   gateway  `nimdeck gateway` (token check, request records, one loop thread)
#            fed by a `nimdeck up` whose agent runs the backend as a
#            process-runtime instance
# Cases: load runs wrk at each connection count (small non-streamed
# completions). alone repeats that for the gateway while the nimdeck server
# is paused, so no record storage competes for the CPUs. stream measures the
# time to first event and the delay per event. hold opens idle keep-alive
# and SSE connections and reports RSS per connection.
# Needs wrk and nginx (scripts/deps.sh --bench installs them); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
duration=5
conns="2 64"
streams=30
hold=10000
hold_s=3
rounds=3
cases="load alone stream hold"

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    --hold) hold=$2; shift 2 ;;
    --hold-s) hold_s=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done

nimdeck=$PWD/$build/nimdeck
backend=$PWD/$build/bench/bench-backend
client=$PWD/$build/bench/bench-client

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}: run scripts/deps.sh --bench (or apt-get install ${missing[*]})" >&2
    exit 1
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
# The gateway rejects requests with 503 once its view of the server is
# 35 s old, so a paused server limits the length of an alone run.
if [[ " $cases " == *" alone "* ]] && [ "$duration" -ge 30 ]; then
    echo "bench: --duration $duration is too long for the alone case (the gateway rejects" \
        "requests after 35 s without the server); use less than 30 or drop alone from --cases" >&2
    exit 2
fi
for f in "$nimdeck" "$backend" "$client"; do
    if [ ! -x "$f" ]; then
        echo "bench: $f not found: run 'make BUILD=$build bench' first" >&2
        exit 1
    fi
done

# Each proxied stream holds two descriptors; go as high as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nimdeck-bench.XXXXXX")
pids=()
up_pid=""
gw_pid=""
nginx_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Every step runs even when one fails (a process may be gone already).
    set +e
    # A run stopped during the alone case must not leave the server paused.
    [ -n "$up_pid" ] && kill -CONT "$up_pid" 2>/dev/null
    # Stop in the reverse order of the starts. nimdeck up stops its
    # instance (the backend) itself on SIGTERM.
    [ -n "$gw_pid" ] && kill -TERM "$gw_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    for p in "${pids[@]}" $gw_pid $nginx_pid; do
        for _ in $(seq 1 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        echo "bench: failed (exit $rc); logs in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() {   # URL what
    for _ in $(seq 1 150); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "bench: $2 did not answer at $1 within 15 s" >&2
    exit 1
}

mapfile -t ports < <("$client" ports --count 5)
api_port=${ports[0]} upgw_port=${ports[1]} gw_port=${ports[2]} nginx_port=${ports[3]} back_port=${ports[4]}

# ---- nimdeck: up (server and agent), the backend as an instance, a gateway ----
export NIMDECK_SERVER=http://127.0.0.1:$api_port
NIMDECK_LOG_LEVEL=warn "$nimdeck" up --data "$tmp/data" --api "127.0.0.1:$api_port" \
    --gateway "127.0.0.1:$upgw_port" --agent-name bench >"$tmp/up.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
wait_http "$NIMDECK_SERVER/api/v1/health" "nimdeck up"
NIMDECK_TOKEN=$(cat "$tmp/data/admin-token")
export NIMDECK_TOKEN

cat >"$tmp/backend.json" <<EOF
{"version": 1, "name": "bench-backend", "project": "bench", "runtime": "process",
 "image": "nimdeck/bench-backend", "command": ["$backend", "--port", "{port}"],
 "port": $back_port, "queue": "default", "idle_time_limit_hours": 0}
EOF
launched=$("$nimdeck" launch --config "$tmp/backend.json" --json)
instance=$(jq -r .id <<<"$launched")
serve_path=$(jq -r .path <<<"$launched")
if [ -z "$instance" ] || [ "$instance" = null ]; then
    echo "bench: launching the backend instance failed" >&2
    exit 1
fi
for _ in $(seq 1 150); do
    [ "$("$nimdeck" apps show "$instance" --json | jq -r .status)" = active ] && break
    sleep 0.1
done
wait_http "http://127.0.0.1:$back_port/v1/health/ready" "the bench backend"
gw_token=$("$nimdeck" tokens create --days 1)

start_gateway() {
    NIMDECK_LOG_LEVEL=warn "$nimdeck" gateway --token-file "$tmp/data/admin-token" \
        --listen "127.0.0.1:$gw_port" >>"$tmp/gateway.log" 2>&1 &
    gw_pid=$!
    wait_http "http://127.0.0.1:$gw_port/healthz" "nimdeck gateway"
}

stop_pid() {   # PID SIGNAL: stop one process we started and wait for it
    kill "-$2" "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}

stop_gateway() {
    [ -n "$gw_pid" ] && stop_pid "$gw_pid" TERM
    gw_pid=""
}
start_gateway

# ---- nginx: one worker, keep-alive to the backend, no buffering, no logs ----
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections $nofile; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$back_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location /serve/$serve_path/ {
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
start_nginx() {
    "$nginx_bin" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
    nginx_pid=$!
    wait_http "http://127.0.0.1:$nginx_port/serve/$serve_path/v1/health/ready" "nginx"
}

stop_nginx() {
    [ -n "$nginx_pid" ] && stop_pid "$nginx_pid" QUIT
    nginx_pid=""
}
start_nginx

declare -A url
url[direct]="http://127.0.0.1:$back_port"
url[nginx]="http://127.0.0.1:$nginx_port/serve/$serve_path"
url[gateway]="http://127.0.0.1:$gw_port/serve/$serve_path"
url[alone]=${url[gateway]}
declare -A port=([direct]=$back_port [nginx]=$nginx_port [gateway]=$gw_port)
targets="direct nginx gateway"

field() {   # LINE KEY
    sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"
}

has_case() {
    [[ " $cases " == *" $1 "* ]]
}

echo "nimdeck gateway benchmark: $(nproc) CPUs, $(uname -r), descriptor limit $nofile"

# ---- throughput and latency ----
cpu_ticks() {   # PID...: user+system clock ticks used so far
    local total=0 t
    for p in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

backend_pid=$(pgrep -f "bench-backend --port $back_port" | head -1)
nginx_worker=$(ps -o pid= --ppid "$nginx_pid" | head -1 | tr -d ' ')
declare -A cpu_pids=([direct]=$backend_pid [nginx]=$nginx_worker [gateway]=$gw_pid
    [alone]=$gw_pid)
# alone: the gateway again, with the nimdeck server stopped (SIGSTOP) for the
# run, so the server's storing of request records does not compete for the
# CPUs. Its records wait in the gateway (at most 10 000, the rest are
# dropped with a warning in its log) and are posted after SIGCONT.
load_targets=$targets
has_case alone && load_targets+=" alone"
declare -A rps p50 p99 ticks reqs server_ticks
has_case load || conns=""
if [ -n "$conns" ]; then
    echo "wrk: -t1, ${duration}s per run, $rounds rounds with the targets interleaved (medians"
    echo "shown), POST chat completion (small JSON), after a 1 s warm-up"
fi
for c in $conns; do
    for t in $targets; do
        BENCH_TOKEN=$gw_token timeout 30 wrk -t1 -c"$c" -d1s -s bench/wrk.lua \
            "${url[$t]}/v1/chat/completions" >/dev/null
    done
    declare -A runs_rps=() runs_p50=() runs_p99=()
    for round in $(seq 1 "$rounds"); do
        for t in $load_targets; do
            before=$(cpu_ticks ${cpu_pids[$t]})
            server_before=$(cpu_ticks "$up_pid")
            [ "$t" = alone ] && kill -STOP "$up_pid"
            out=$(BENCH_TOKEN=$gw_token timeout $((duration + 30)) wrk -t1 -c"$c" \
                -d"${duration}s" --timeout 5s -s bench/wrk.lua "${url[$t]}/v1/chat/completions" |
                grep '^RESULT')
            [ "$t" = alone ] && kill -CONT "$up_pid"
            if [ "$(field "$out" errors)" != 0 ] || [ "$(field "$out" non2xx)" != 0 ]; then
                echo "bench: $t at $c connections had errors: $out" >&2
                exit 1
            fi
            ticks[$t,$c]=$(( ${ticks[$t,$c]:-0} + $(cpu_ticks ${cpu_pids[$t]}) - before ))
            server_ticks[$t,$c]=$(( ${server_ticks[$t,$c]:-0} + $(cpu_ticks "$up_pid") - server_before ))
            reqs[$t,$c]=$(( ${reqs[$t,$c]:-0} + $(field "$out" requests) ))
            runs_rps[$t]+=" $(field "$out" rps)"
            runs_p50[$t]+=" $(field "$out" p50_us)"
            runs_p99[$t]+=" $(field "$out" p99_us)"
        done
    done
    for t in $load_targets; do
        rps[$t,$c]=$(median ${runs_rps[$t]})
        p50[$t,$c]=$(median ${runs_p50[$t]})
        p99[$t,$c]=$(median ${runs_p99[$t]})
    done
done

tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu_per_req() {   # TICKS REQUESTS: CPU microseconds per request
    awk -v t="$1" -v r="$2" -v us="$tick_us" 'BEGIN { printf "%.1f", (r > 0 ? t * us / r : 0) }'
}

if [ -n "$conns" ]; then
    echo
    echo "CPU us/req: of the backend (direct), the nginx worker, or the gateway process; the"
    echo "server's CPU for the gateway's request records is shown apart"
    printf '%-8s %6s %10s %9s %9s %11s %11s\n' target conns "req/s" "p50 us" "p99 us" \
        "CPU us/req" "server us"
fi
for c in $conns; do
    for t in $load_targets; do
        server=-
        [ "$t" = gateway ] && server=$(cpu_per_req "${server_ticks[$t,$c]}" "${reqs[$t,$c]}")
        printf '%-8s %6s %10s %9s %9s %11s %11s\n' "$t" "$c" "${rps[$t,$c]}" "${p50[$t,$c]}" \
            "${p99[$t,$c]}" "$(cpu_per_req "${ticks[$t,$c]}" "${reqs[$t,$c]}")" "$server"
    done
done
echo
for c in $conns; do
    awk -v c="$c" -v g="${rps[gateway,$c]}" -v n="${rps[nginx,$c]}" \
        -v gp50="${p50[gateway,$c]}" -v gp99="${p99[gateway,$c]}" \
        -v np50="${p50[nginx,$c]}" -v np99="${p99[nginx,$c]}" \
        -v dp50="${p50[direct,$c]}" -v dp99="${p99[direct,$c]}" 'BEGIN {
        printf "%s connections: gateway/nginx throughput %.2f; added over direct: gateway p50 %+d us, p99 %+d us; nginx p50 %+d us, p99 %+d us\n",
            c, g / n, gp50 - dp50, gp99 - dp99, np50 - dp50, np99 - dp99 }'
    if has_case alone; then
        awk -v c="$c" -v g="${rps[alone,$c]}" -v n="${rps[nginx,$c]}" \
            -v gp50="${p50[alone,$c]}" -v gp99="${p99[alone,$c]}" \
            -v dp50="${p50[direct,$c]}" -v dp99="${p99[direct,$c]}" 'BEGIN {
            printf "%s connections, server paused: gateway/nginx throughput %.2f; added over direct: p50 %+d us, p99 %+d us\n",
                c, g / n, gp50 - dp50, gp99 - dp99 }'
    fi
done

# ---- streaming ----
if has_case stream; then
echo
echo "streaming: $streams streams of 20 events 10 ms apart on one keep-alive connection"
printf '%-8s %12s %12s %14s %14s\n' target "ttfb p50 us" "ttfb p99 us" "delay p50 us" "delay p99 us"
declare -A sttfb sdelay sttfb99 sdelay99
for t in $targets; do
    path="/v1/chat/completions?chunks=20&interval_ms=10"
    [ "$t" = direct ] || path="/serve/$serve_path$path"
    out=$(timeout 60 "$client" stream --port "${port[$t]}" --path "$path" --token "$gw_token" \
        --streams "$streams")
    sttfb[$t]=$(field "$out" ttfb_p50_us)
    sttfb99[$t]=$(field "$out" ttfb_p99_us)
    sdelay[$t]=$(field "$out" delay_p50_us)
    sdelay99[$t]=$(field "$out" delay_p99_us)
    printf '%-8s %12s %12s %14s %14s\n' "$t" "${sttfb[$t]}" "${sttfb99[$t]}" "${sdelay[$t]}" \
        "${sdelay99[$t]}"
done
for t in nginx gateway; do
    echo "$t added: first event p50 $((sttfb[$t] - sttfb[direct])) us, per event p50 $((sdelay[$t] - sdelay[direct])) us, p99 $((sdelay99[$t] - sdelay99[direct])) us"
done
fi

# ---- concurrency ----
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Each case starts from a fresh gateway and nginx, so memory freed by an
# earlier case cannot hide what this one needs.
restart_target() {   # TARGET: restart it and print the PID whose RSS counts
    if [ "$1" = gateway ]; then
        stop_gateway
        start_gateway
        echo "$gw_pid"
    else
        stop_nginx
        start_nginx
        ps -o pid= --ppid "$nginx_pid" | head -1 | tr -d ' '
    fi
}

if has_case hold; then
    echo
    echo "concurrency: up to $hold connections per case, held ${hold_s} s; RSS per connection"
    echo "is the growth over a freshly started process that served one request"
    printf '%-8s %-5s %8s %12s %12s\n' target kind held "RSS MiB" "KiB per conn"
    for kind in idle sse; do
        for t in gateway nginx; do
            path="/serve/$serve_path/v1/models"
            [ "$kind" = sse ] && path="/serve/$serve_path/v1/chat/completions?chunks=100000&interval_ms=2000"
            exec 3>"$tmp/rss_pid"
            restart_target "$t" >&3
            exec 3>&-
            rss_pid=$(cat "$tmp/rss_pid")
            curl -s -o /dev/null -H "Authorization: Bearer $gw_token" "${url[$t]}/v1/models"
            before=$(rss_kb "$rss_pid")
            rm -f "$tmp/ready"
            timeout $((hold_s + 120)) "$client" hold --port "${port[$t]}" --path "$path" \
                --token "$gw_token" --count "$hold" --kind "$kind" --hold-s "$hold_s" \
                --ready-file "$tmp/ready" >"$tmp/hold.out" &
            hold_pid=$!
            pids+=("$hold_pid")
            for _ in $(seq 1 900); do
                [ -s "$tmp/ready" ] && break
                sleep 0.1
            done
            sleep 1
            after=$(rss_kb "$rss_pid")
            wait "$hold_pid" || true
            held=$(cat "$tmp/ready" 2>/dev/null || echo 0)
            awk -v t="$t" -v k="$kind" -v n="$held" -v b="$before" -v a="$after" 'BEGIN {
                printf "%-8s %-5s %8d %12.1f %12.2f\n", t, k, n, a / 1024, (n > 0 ? (a - b) / n : 0) }'
        done
    done
fi
echo
echo "bench: done"
