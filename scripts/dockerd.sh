#!/usr/bin/env bash
# Start or stop a private Docker daemon for the tests, with everything it
# keeps (data, runtime state, socket, PID file, log) under one folder.
#
#   DOCKER_HOST=$(scripts/dockerd.sh start DIR)   prints unix://DIR/docker.sock
#   scripts/dockerd.sh stop DIR
#
# The daemon makes no bridge and leaves iptables and IP forwarding alone,
# so test containers use host networking and nothing on the machine's
# network changes. It needs root (rootless Docker is not supported here)
# and the docker.io package. Its containerd objects live in their own
# namespace, so it can share a system containerd with another daemon.
set -euo pipefail

usage() {
    echo "usage: scripts/dockerd.sh start|stop DIR" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
sock=$dir/docker.sock
pidfile=$dir/docker.pid
log=$dir/dockerd.log

# How long start waits for the daemon to respond, and stop for it to exit.
START_TIMEOUT_S=${DOCKERD_START_TIMEOUT_S:-60}
STOP_TIMEOUT_S=${DOCKERD_STOP_TIMEOUT_S:-30}

running_pid() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid=$(cat "$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # A PID file left by a dead daemon may name an unrelated process now.
    [ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)")" = dockerd ] || return 1
    echo "$pid"
}

ping_daemon() {
    curl -sf --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}

wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

start() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "dockerd.sh: the test daemon needs root; run the tests as root or with sudo" >&2
        exit 1
    fi
    local dockerd
    dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
    if [ ! -x "$dockerd" ]; then
        echo "dockerd.sh: dockerd not found; install it with 'scripts/deps.sh --test' (package docker.io)" >&2
        exit 1
    fi
    # A unix socket path has at most 107 bytes.
    if [ "${#sock}" -gt 100 ]; then
        echo "dockerd.sh: socket path $sock is too long for a unix socket; use a shorter DIR" >&2
        exit 1
    fi
    if pid=$(running_pid); then
        echo "dockerd.sh: a daemon (PID $pid) already runs in $dir; stop it first" >&2
        exit 1
    fi

    mkdir -p "$dir/data" "$dir/exec"
    # An empty configuration file, so /etc/docker/daemon.json cannot add
    # listeners or networks to the test daemon.
    echo '{}' >"$dir/daemon.json"
    rm -f "$sock" "$pidfile"

    "$dockerd" \
        --config-file "$dir/daemon.json" \
        --host "unix://$sock" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$pidfile" \
        --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        --containerd-namespace nimdeck-test \
        --containerd-plugins-namespace nimdeck-test-plugins \
        </dev/null >"$log" 2>&1 &
    local pid=$!

    local deadline=$((SECONDS + START_TIMEOUT_S))
    until ping_daemon; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "dockerd.sh: dockerd exited during start-up; the end of $log:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "dockerd.sh: dockerd did not respond on $sock within ${START_TIMEOUT_S}s; the end of $log:" >&2
            tail -20 "$log" >&2
            kill "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.2
    done
    echo "unix://$sock"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        echo "dockerd.sh: no daemon runs in $dir" >&2
        unmount_left
        return 0
    fi
    # On SIGTERM the daemon stops its containers and unmounts their layers.
    kill -TERM "$pid"
    if ! wait_gone "$pid" "$STOP_TIMEOUT_S"; then
        echo "dockerd.sh: dockerd (PID $pid) still runs after ${STOP_TIMEOUT_S}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || true
    fi
    unmount_left
}

# The daemon leaves its network namespace file bind-mounted (and, after a
# kill, container layers), which would keep DIR from being removed.
unmount_left() {
    local mount
    awk -v prefix="$dir/" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r mount; do
            umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
        done
}

case "$action" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
