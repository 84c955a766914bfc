#!/usr/bin/env bash
# The production topology on one machine: Cassandra, Kafka, a 3-master Redis cluster, N instances
# of message-service on the `cluster` profile, and nginx in front of them on one public port.
# deploy/local/up.sh, down.sh and status.sh call this script.
#
# Usage: deploy/local/stack.sh COMMAND [ARGS]
#   up                  start whatever is not running yet (servers, schema migrations, instances,
#                       nginx) and wait until each answers; safe to run again at any time
#   down [--wipe]       stop nginx and the instances (SIGTERM: they drain their sockets), then
#                       Redis, Kafka and Cassandra; --wipe also deletes every data folder
#   status              one line per part; exit 0 only when every part answers
#   instances           "I PORT PID" per instance (PID "-" when not running)
#   kill-instance I     SIGKILL instance I (a crash); nginx routes around it
#   stop-instance I     SIGTERM instance I and wait for it to exit (a rolling restart's first half)
#   start-instance I    start instance I again and wait until it is ready
#   env                 print the environment the instances run with (secrets included: the
#                       tests mint tokens with it)
#
# Environment (all optional):
#   STACK_INSTANCES         number of instances (default 2)
#   STACK_PUBLIC_PORT       nginx's public port (default 8088), on STACK_PUBLIC_HOST (127.0.0.1)
#   STACK_INSTANCE_PORT     port of instance 1 (default 8181); instance I uses PORT + I - 1
#   STACK_REDIS_REPLICAS    1: also start one replica per Redis master (default 0)
#   STACK_CASSANDRA_NODES   Cassandra nodes, on 127.0.0.1..N (default 1); with 3 or more the
#                           keyspace is created with replication factor 3 (LOCAL_QUORUM then
#                           survives a node down)
#   STACK_READY_TIMEOUT     seconds an instance may take to become ready (default 60)
#   STACK_WORKER_CONNECTIONS nginx worker_connections (default 8192)
#   MESSAGE_SERVICE_BIN     the binary to run (default: built with `cargo build --release`)
#   NGINX                   the nginx binary (default: nginx from PATH; installed with apt)
#   CHAT_STACK_HOME         instance logs, pids, generated secrets and nginx's prefix folder
#                           (default ${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/stack)
#   CASSANDRA_PORT, KAFKA_PORT, REDIS_CLUSTER_PORT and every other setting of cassandra.sh,
#   kafka.sh and redis-cluster.sh pass through to them; CHAT__* variables pass through to the
#   instances (e.g. CHAT__LOG__FORMAT=json).
#
# Secrets: the first `up` generates a JWT secret, a content key and a digest key into
# $CHAT_STACK_HOME/secrets.env (mode 600) and reuses them afterwards; set CHAT__AUTH__JWT_SECRET,
# CHAT__CRYPTO__KEYS__1 and CHAT__CRYPTO__DIGEST_KEY to use your own.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/deploy/local
home=${CHAT_STACK_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/stack}
instances=${STACK_INSTANCES:-2}
public_host=${STACK_PUBLIC_HOST:-127.0.0.1}
public_port=${STACK_PUBLIC_PORT:-8088}
instance_port=${STACK_INSTANCE_PORT:-8181}
redis_replicas=${STACK_REDIS_REPLICAS:-0}
cassandra_nodes=${STACK_CASSANDRA_NODES:-1}
ready_timeout=${STACK_READY_TIMEOUT:-60}
worker_connections=${STACK_WORKER_CONNECTIONS:-8192}
nginx_bin=${NGINX:-nginx}
cassandra_port=${CASSANDRA_PORT:-9042}
kafka_port=${KAFKA_PORT:-9092}
redis_port=${REDIS_CLUSTER_PORT:-7001}
nginx_prefix=$home/nginx

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

for value in "$instances" "$public_port" "$instance_port" "$ready_timeout" "$cassandra_nodes"; do
    is_uint "$value" || die "not a number: $value"
done
((instances >= 1)) || die "STACK_INSTANCES must be at least 1"

# The status code of `GET path` on host:port, or nothing when nobody answers (no curl needed).
http_status() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
        read -r line <&3
        printf "%s\n" "$line" | cut -d" " -f2
    ' "$1" "$2" "$3" 2>/dev/null || true
}

# Whether process $1 runs (a zombie, dead but not yet reaped, does not count).
alive() {
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $state && $state != Z* ]]
}

# ---------------------------------------------------------------------------------------------
# The binary and the instances' environment.

service_bin() {
    if [[ -n ${MESSAGE_SERVICE_BIN:-} ]]; then
        [[ -x $MESSAGE_SERVICE_BIN ]] || die "MESSAGE_SERVICE_BIN=$MESSAGE_SERVICE_BIN is not an executable"
        echo "$MESSAGE_SERVICE_BIN"
        return
    fi
    local target=${CARGO_TARGET_DIR:-$repo/target}
    say "building message-service (cargo build --release; MESSAGE_SERVICE_BIN skips this)"
    (cd "$repo" && cargo build --release --locked -p chat-server >&2)
    echo "$target/release/message-service"
}

ensure_secrets() {
    local file=$home/secrets.env bin=$1
    mkdir -p "$home"
    if [[ ! -s $file ]]; then
        say "generating this stack's secrets into $file"
        umask 077
        {
            echo "CHAT__AUTH__JWT_SECRET=$("$bin" keygen)"
            echo "CHAT__CRYPTO__ACTIVE_KEY_ID=1"
            echo "CHAT__CRYPTO__KEYS__1=$("$bin" keygen)"
            echo "CHAT__CRYPTO__DIGEST_KEY=$("$bin" keygen)"
        } >"$file.tmp"
        mv "$file.tmp" "$file"
    fi
}

# The environment of every instance (and of `migrate`), one VAR=value per line. Variables
# already set by the caller win over the generated secrets.
instance_env() {
    local file=$home/secrets.env line name
    echo "CHAT_PROFILE=cluster"
    echo "CHAT_CONFIG_DIR=$repo/config"
    local contact_points="" i
    for ((i = 1; i <= cassandra_nodes; i++)); do
        contact_points+="${contact_points:+,}127.0.0.$i:$cassandra_port"
    done
    echo "CHAT__CASSANDRA__CONTACT_POINTS=${CHAT__CASSANDRA__CONTACT_POINTS:-$contact_points}"
    echo "CHAT__CASSANDRA__REPLICATION__REPLICATION_FACTOR=${CHAT__CASSANDRA__REPLICATION__REPLICATION_FACTOR:-$((cassandra_nodes >= 3 ? 3 : cassandra_nodes))}"
    echo "CHAT__KAFKA__BROKERS=${CHAT__KAFKA__BROKERS:-127.0.0.1:$kafka_port}"
    echo "CHAT__REDIS__NODES=${CHAT__REDIS__NODES:-127.0.0.1:$redis_port,127.0.0.1:$((redis_port + 1)),127.0.0.1:$((redis_port + 2))}"
    if [[ -f $file ]]; then
        while IFS= read -r line; do
            name=${line%%=*}
            [[ -n ${!name:-} ]] || echo "$line"
        done <"$file"
    fi
}

# Runs "$@" with the instances' environment added.
with_instance_env() {
    local env_lines=()
    mapfile -t env_lines < <(instance_env)
    env "${env_lines[@]}" "$@"
}

instance_dir() { echo "$home/instance-$1"; }
instance_port_of() { echo $((instance_port + $1 - 1)); }
instance_pid() {
    local file
    file=$(instance_dir "$1")/pid
    [[ -f $file ]] || return 0
    local pid
    pid=$(<"$file")
    if alive "$pid"; then echo "$pid"; fi
}

wait_instance_ready() {
    local i=$1 port pid deadline
    port=$(instance_port_of "$i")
    deadline=$((SECONDS + ready_timeout))
    while [[ $(http_status 127.0.0.1 "$port" /readyz) != 200 ]]; do
        pid=$(instance_pid "$i")
        if [[ -z $pid ]]; then
            tail -n 30 "$(instance_dir "$i")/service.log" >&2 || true
            die "instance $i exited before it was ready (log above: $(instance_dir "$i")/service.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$(instance_dir "$i")/service.log" >&2 || true
            die "instance $i was not ready on port $port within ${ready_timeout}s"
        fi
        sleep 0.3
    done
}

start_instance() {
    local i=$1 bin=$2 port dir
    port=$(instance_port_of "$i")
    dir=$(instance_dir "$i")
    mkdir -p "$dir"
    if [[ -n $(instance_pid "$i") ]]; then
        say "instance $i already runs on 127.0.0.1:$port (pid $(instance_pid "$i"))"
        return
    fi
    if [[ -n $(http_status 127.0.0.1 "$port" /healthz) ]]; then
        die "port $port (instance $i) is taken by another process"
    fi
    say "starting instance $i on 127.0.0.1:$port (log $dir/service.log)"
    echo "--- start $(date -u +%FT%TZ)" >>"$dir/service.log"
    local env_lines=()
    mapfile -t env_lines < <(instance_env)
    # A simple command in the background: $! is the service itself (setsid and env exec it),
    # so a later SIGKILL hits the service, not a wrapper.
    setsid env "${env_lines[@]}" \
        CHAT__SERVER__HOST=127.0.0.1 \
        CHAT__SERVER__PORT="$port" \
        CHAT__SERVER__INSTANCE_NAME="instance-$i" \
        CHAT__EMBEDDED__DATA_DIR="$dir/data" \
        "$bin" serve </dev/null >>"$dir/service.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_instance_ready "$i"
    say "instance $i is ready"
}

stop_instance() {
    local i=$1 pid deadline
    pid=$(instance_pid "$i")
    if [[ -z $pid ]]; then
        return
    fi
    say "stopping instance $i (SIGTERM to pid $pid: it closes its sockets with 1001 and drains)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            say "instance $i did not exit within 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$(instance_dir "$i")/pid"
}

kill_instance() {
    local i=$1 pid
    pid=$(instance_pid "$i")
    [[ -n $pid ]] || die "instance $i is not running"
    say "killing instance $i (SIGKILL to pid $pid)"
    kill -KILL "$pid"
    while alive "$pid"; do sleep 0.05; done
    rm -f "$(instance_dir "$i")/pid"
}

# Instances started earlier with a larger STACK_INSTANCES.
known_instances() {
    local dir count=$instances n
    for dir in "$home"/instance-*; do
        [[ -d $dir ]] || continue
        n=${dir##*-}
        is_uint "$n" && ((n > count)) && count=$n
    done
    echo "$count"
}

# ---------------------------------------------------------------------------------------------
# nginx.

ensure_nginx() {
    if command -v "$nginx_bin" >/dev/null 2>&1; then
        return
    fi
    if [[ $nginx_bin != nginx || $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$nginx_bin is missing: install it with 'sudo apt-get install nginx' (or set NGINX)"
    fi
    say "nginx is missing: installing it with apt-get (its own service is kept from starting)"
    local blocker=/usr/sbin/policy-rc.d placed=0 log
    if [[ ! -e $blocker ]]; then
        # Debian starts a freshly installed service on port 80 unless policy-rc.d says no.
        printf '#!/bin/sh\nexit 101\n' >"$blocker"
        chmod +x "$blocker"
        placed=1
    fi
    log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        ((placed)) && rm -f "$blocker"
        rm -f "$log"
        die "apt-get install nginx failed"
    fi
    ((placed)) && rm -f "$blocker"
    rm -f "$log"
    command -v nginx >/dev/null 2>&1 || die "nginx not found after installing it"
}

nginx_pid() {
    local file=$nginx_prefix/nginx.pid pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if alive "$pid"; then echo "$pid"; fi
}

render_nginx_conf() {
    local count=$1 i upstreams="" ws_upstreams=""
    mkdir -p "$nginx_prefix"/{conf,logs,temp}
    # The template says why REST has passive health checks and WebSocket handshakes do not.
    for ((i = 1; i <= count; i++)); do
        upstreams+="        server 127.0.0.1:$(instance_port_of "$i") max_fails=2 fail_timeout=2s;"$'\n'
        ws_upstreams+="        server 127.0.0.1:$(instance_port_of "$i") max_fails=0;"$'\n'
    done
    local template=$repo/deploy/nginx/nginx.conf.template out=$nginx_prefix/conf/nginx.conf
    awk -v prefix="$nginx_prefix" -v listen="$public_host:$public_port" \
        -v upstreams="${upstreams%$'\n'}" -v ws_upstreams="${ws_upstreams%$'\n'}" \
        -v connections="$worker_connections" '
        { gsub(/@@PREFIX@@/, prefix); gsub(/@@LISTEN@@/, listen);
          gsub(/@@WORKER_CONNECTIONS@@/, connections) }
        /^@@UPSTREAMS@@$/ { print upstreams; next }
        /^@@WS_UPSTREAMS@@$/ { print ws_upstreams; next }
        { print }' "$template" >"$out.tmp"
    mv "$out.tmp" "$out"
    "$nginx_bin" -p "$nginx_prefix/" -c conf/nginx.conf -e "$nginx_prefix/logs/error.log" -t -q ||
        die "nginx rejected $out"
}

start_nginx() {
    ensure_nginx
    render_nginx_conf "$instances"
    if [[ -n $(nginx_pid) ]]; then
        say "nginx already runs: reloading its configuration"
        "$nginx_bin" -p "$nginx_prefix/" -c conf/nginx.conf -e "$nginx_prefix/logs/error.log" -s reload
    else
        if [[ -n $(http_status "$public_host" "$public_port" /) ]]; then
            die "port $public_port is taken by another process (set STACK_PUBLIC_PORT)"
        fi
        say "starting nginx on $public_host:$public_port (prefix $nginx_prefix)"
        "$nginx_bin" -p "$nginx_prefix/" -c conf/nginx.conf -e "$nginx_prefix/logs/error.log"
    fi
    local deadline=$((SECONDS + 20))
    until [[ $(http_status "$public_host" "$public_port" /readyz) == 200 ]]; do
        ((SECONDS < deadline)) || die "nginx does not answer on $public_host:$public_port (see $nginx_prefix/logs/error.log)"
        sleep 0.2
    done
}

stop_nginx() {
    local pid deadline
    pid=$(nginx_pid)
    [[ -n $pid ]] || return 0
    say "stopping nginx (pid $pid)"
    kill -QUIT "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$nginx_prefix/nginx.pid"
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_up() {
    local bin started
    started=$SECONDS
    say "Cassandra ($cassandra_nodes node(s), CQL port $cassandra_port)"
    bash "$here/cassandra.sh" start --nodes "$cassandra_nodes"
    say "Kafka (127.0.0.1:$kafka_port)"
    bash "$here/kafka.sh" start
    say "Redis cluster (127.0.0.1:$redis_port..)"
    if [[ $redis_replicas == 1 ]]; then
        bash "$here/redis-cluster.sh" start --replicas
    else
        bash "$here/redis-cluster.sh" start
    fi
    bin=$(service_bin)
    ensure_secrets "$bin"
    say "schema migrations (message-service migrate)"
    with_instance_env "$bin" migrate >>"$home/migrate.log" 2>&1 ||
        { tail -n 20 "$home/migrate.log" >&2; die "migrations failed (log: $home/migrate.log)"; }
    local i
    for ((i = 1; i <= instances; i++)); do
        start_instance "$i" "$bin"
    done
    start_nginx
    say "up in $((SECONDS - started)) s: http://$public_host:$public_port/ (WebSocket ws://$public_host:$public_port/ws), $instances instances on ports $instance_port-$((instance_port + instances - 1))"
    say "a token: $(basename "$bin") token --user <uuid> with the stack's secrets: deploy/local/stack.sh env"
}

cmd_down() {
    local wipe=0 i
    [[ ${1:-} == --wipe ]] && wipe=1
    stop_nginx
    for ((i = 1; i <= $(known_instances); i++)); do
        stop_instance "$i"
    done
    local flag=()
    ((wipe)) && flag=(--wipe)
    bash "$here/redis-cluster.sh" stop "${flag[@]}" || true
    bash "$here/kafka.sh" stop "${flag[@]}" || true
    bash "$here/cassandra.sh" stop "${flag[@]}" || true
    if ((wipe)); then
        say "deleting $home"
        rm -rf "$home"
    fi
    say "down"
}

cmd_status() {
    local ok=0 i pid port code
    bash "$here/cassandra.sh" status >&2 || ok=1
    bash "$here/kafka.sh" status >&2 || ok=1
    bash "$here/redis-cluster.sh" status >&2 || ok=1
    for ((i = 1; i <= $(known_instances); i++)); do
        pid=$(instance_pid "$i")
        port=$(instance_port_of "$i")
        code=$(http_status 127.0.0.1 "$port" /readyz)
        if [[ -n $pid && $code == 200 ]]; then
            echo "instance $i: ready on 127.0.0.1:$port (pid $pid)"
        else
            echo "instance $i: ${pid:+running (pid $pid) but }not ready on 127.0.0.1:$port${code:+ (readyz $code)}"
            ok=1
        fi
    done
    pid=$(nginx_pid)
    code=$(http_status "$public_host" "$public_port" /readyz)
    if [[ -n $pid && $code == 200 ]]; then
        echo "nginx: serving http://$public_host:$public_port/ (pid $pid)"
    else
        echo "nginx: not serving on $public_host:$public_port${pid:+ (pid $pid)}"
        ok=1
    fi
    return "$ok"
}

cmd_instances() {
    local i pid
    for ((i = 1; i <= $(known_instances); i++)); do
        pid=$(instance_pid "$i")
        echo "$i $(instance_port_of "$i") ${pid:--}"
    done
}

need_instance() {
    [[ -n ${1:-} ]] && is_uint "$1" && (($1 >= 1)) || die "name an instance number (1..$(known_instances))"
}

command=${1:-}
shift || true
case $command in
    up) cmd_up ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    instances) cmd_instances ;;
    kill-instance) need_instance "${1:-}"; kill_instance "$1" ;;
    stop-instance) need_instance "${1:-}"; stop_instance "$1" ;;
    start-instance)
        need_instance "${1:-}"
        start_instance "$1" "$(service_bin)"
        ;;
    env) instance_env ;;
    *)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
