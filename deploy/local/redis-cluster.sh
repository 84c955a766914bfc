#!/usr/bin/env bash
# Runs a real Redis 7 cluster on loopback from Debian's redis-server package: 3 masters, or 3
# masters and 3 replicas (one per master), each node a daemonized redis-server on 127.0.0.1.
#
# Usage: deploy/local/redis-cluster.sh COMMAND [ARGS]
#   start [--replicas]    start the 3 masters (with --replicas also 3 replicas, one per master),
#                         create the cluster if it does not exist yet, and wait until it is ready;
#                         does nothing for nodes that already run
#   wait [--timeout S]    wait until the cluster is ready (default 60 s); nodes stopped with
#                         kill-node are left out, so `kill-node 1; wait` waits for the failover
#   status                print each node's state; exit 0 only if every node answers PING and
#                         reports cluster_state:ok
#   nodes                 print CLUSTER NODES (asked from the first node that answers)
#   stop [--wipe]         stop every node (SIGTERM: Redis flushes its AOF and nodes.conf; SIGKILL
#                         after $REDIS_CLUSTER_STOP_TIMEOUT s); --wipe kills the nodes and deletes
#                         the data folder
#   wipe                  same as stop --wipe
#   kill-node I           kill node I at once (SIGKILL, like a crash)
#   start-node I          start node I again (it rejoins with its nodes.conf) and wait until the
#                         cluster is ready
#   failover I            graceful failover: replica I takes over from its master (CLUSTER
#                         FAILOVER; no connection drops), then wait until the cluster is ready
#   move-slots F T N      reshard: move N slots from master F to master T (redis-cli --cluster
#                         reshard, keys migrate with them), then wait until the cluster is ready
#   cli I ARGS...         run redis-cli -c against node I, e.g. `cli 1 get foo`
#
# Nodes: node I (1-6) listens on 127.0.0.1 port REDIS_CLUSTER_PORT + I - 1, its cluster bus on that
# port + 10000. Nodes 1-3 start as masters (slots 0-5460, 5461-10922, 10923-16383); with
# --replicas, node 4 replicates node 1, node 5 node 2 and node 6 node 3. After a failover the roles
# change: `status` and `nodes` show the current ones.
#
# Ready: every node that should run answers PING and reports cluster_state:ok; in its CLUSTER NODES
# no master that owns slots is flagged fail/pfail or disconnected; every replica reports
# master_link_status:up.
#
# Layout and files:
#   data        $CHAT_REDIS_HOME/n<port>/: redis.conf (written at every start of the node),
#               nodes.conf (cluster state: node ids, epochs, slots), appendonlydir/ (AOF),
#               redis.log, redis.pid, startup.log; $CHAT_REDIS_HOME/cluster.conf records the
#               layout (base port, replicas or not), create.log the output of the cluster creation.
#               Starting another layout than the recorded one deletes the old (stopped) cluster.
#   persistence appendonly yes, appendfsync everysec, no RDB snapshots: stop/start keeps the data,
#               a killed node loses at most the last second of writes.
#
# Environment (all optional):
#   REDIS_CLUSTER_PORT          port of node 1 (default 7001; nodes use PORT..PORT+5, buses +10000)
#   REDIS_CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms (default 3000; a failover takes ~1.5-2x)
#   REDIS_CLUSTER_MAXMEMORY     maxmemory per node (default 128mb)
#   REDIS_CLUSTER_MAXMEMORY_POLICY  maxmemory-policy (default allkeys-lru: Redis is a cache here)
#   REDIS_CLUSTER_START_TIMEOUT seconds `start`/`start-node` wait for readiness (default 60)
#   REDIS_CLUSTER_STOP_TIMEOUT  seconds before SIGKILL follows SIGTERM (default 15)
#   REDIS_SERVER, REDIS_CLI     the binaries (default: redis-server and redis-cli from PATH)
#   CHAT_REDIS_HOME             default ${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/redis-cluster
set -euo pipefail

base_port=${REDIS_CLUSTER_PORT:-7001}
node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT:-3000}
maxmemory=${REDIS_CLUSTER_MAXMEMORY:-128mb}
maxmemory_policy=${REDIS_CLUSTER_MAXMEMORY_POLICY:-allkeys-lru}
start_timeout=${REDIS_CLUSTER_START_TIMEOUT:-60}
stop_timeout=${REDIS_CLUSTER_STOP_TIMEOUT:-15}
home=${CHAT_REDIS_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/redis-cluster}
redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}
masters=3

say() { printf '[redis-cluster] %s\n' "$*" >&2; }
die() { printf '[redis-cluster] error: %s\n' "$*" >&2; exit 1; }

usage() {
    awk '/^# Usage:/ { p = 1 } /^# Nodes:/ { exit } p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

if ! is_uint "$base_port" || ((base_port < 1024 || base_port + 5 + 10000 > 65535)); then
    die "REDIS_CLUSTER_PORT must be between 1024 and 55530, not '$base_port'"
fi
if ((base_port <= 6379 && 6379 <= base_port + 5)); then
    die "REDIS_CLUSTER_PORT=$base_port: the nodes would use 6379, the default Redis port; pick another"
fi
if ! is_uint "$node_timeout" || ((node_timeout < 500)); then die "REDIS_CLUSTER_NODE_TIMEOUT must be >= 500 (ms)"; fi
is_uint "$start_timeout" || die "REDIS_CLUSTER_START_TIMEOUT must be a number of seconds"
is_uint "$stop_timeout" || die "REDIS_CLUSTER_STOP_TIMEOUT must be a number of seconds"

# ---------------------------------------------------------------------------------------------
# Prerequisites: redis-server and redis-cli 7.x (Debian bookworm: redis-server 5:7.0.15).

# Stops (and keeps from starting at boot) the Debian redis-server service that installing the
# package may have started on 6379.
stop_system_service() {
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet redis-server 2>/dev/null || systemctl is-enabled --quiet redis-server 2>/dev/null; then
            say "stopping and disabling the Debian redis-server service (port 6379): our nodes do not use it"
            systemctl disable --now redis-server >&2 || true
        fi
    elif command -v service >/dev/null 2>&1; then
        if service redis-server status >/dev/null 2>&1 || tcp_open 127.0.0.1 6379; then
            say "stopping the Debian redis-server service (port 6379): our nodes do not use it"
            service redis-server stop >&2 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then update-rc.d redis-server disable >/dev/null 2>&1 || true; fi
    fi
    if tcp_open 127.0.0.1 6379; then
        say "warning: something still listens on 127.0.0.1:6379 (not one of our nodes)"
    fi
    return 0
}

ensure_redis() {
    local v log
    if ! command -v "$redis_server" >/dev/null 2>&1 || ! command -v "$redis_cli" >/dev/null 2>&1; then
        if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1 ||
            [[ $redis_server != redis-server || $redis_cli != redis-cli ]]; then
            die "$redis_server or $redis_cli is missing: install them with 'sudo apt-get install redis-server' (it brings redis-tools, hence redis-cli)"
        fi
        say "redis-server/redis-cli are missing: installing redis-server with apt-get"
        log=$(mktemp)
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >"$log" 2>&1; then
            say "apt-get install failed: running apt-get update first"
            if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >"$log" 2>&1; then
                tail -n 20 "$log" >&2
                rm -f "$log"
                die "apt-get install redis-server failed"
            fi
        fi
        rm -f "$log"
        stop_system_service
        if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
            die "redis-server or redis-cli not found after installing redis-server"
        fi
    fi
    v=$("$redis_server" --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
    [[ -n $v ]] || die "cannot tell the version of $redis_server"
    ((${v%%.*} >= 7)) || die "$redis_server is Redis $v; the cluster needs Redis 7 (sharded pub/sub)"
    redis_version=$v
}

# ---------------------------------------------------------------------------------------------
# Layout helpers.

node_port() { echo $((base_port + $1 - 1)); }
node_dir() { echo "$home/n$(node_port "$1")"; }

# Number of nodes of the recorded layout (3 or 6); fails if there is none or it was made with
# another base port.
configured_nodes() {
    local port replicas
    [[ -f $home/cluster.conf ]] || return 1
    port=$(sed -n 's/^port=//p' "$home/cluster.conf")
    replicas=$(sed -n 's/^replicas=//p' "$home/cluster.conf")
    [[ $port == "$base_port" ]] || return 1
    echo $((masters * (1 + replicas)))
}

# Node dirs present in $home, whatever the layout.
existing_dirs() {
    local d
    for d in "$home"/n[0-9]*; do
        [[ -d $d ]] && echo "$d"
    done
    return 0
}

# PIDs of redis-server processes whose working directory is DIR (redis-server chdirs to `dir`).
dir_pids() {
    local d=$1 p comm
    for p in /proc/[0-9]*; do
        comm=""
        { read -r comm <"$p/comm"; } 2>/dev/null || continue # builtin read: no fork per process
        [[ $comm == redis-server ]] || continue
        [[ $(readlink "$p/cwd" 2>/dev/null) == "$d" ]] && echo "${p#/proc/}"
    done
    return 0
}

dir_pid() {
    local d=$1 pid
    if [[ -f $d/redis.pid ]]; then
        pid=$(<"$d/redis.pid")
        if is_uint "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server &&
            $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$d" ]]; then
            echo "$pid"
            return 0
        fi
    fi
    pid=$(dir_pids "$d" | head -n 1)
    [[ -n $pid ]] && echo "$pid"
}

node_pid() { dir_pid "$(node_dir "$1")"; }

# True if a TCP connection to IP PORT succeeds.
# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# redis-cli against node I; CRs stripped; fails if the node does not answer within 5 s.
cli() {
    local port
    port=$(node_port "$1")
    shift
    timeout 5 "$redis_cli" -h 127.0.0.1 -p "$port" "$@" 2>/dev/null </dev/null | tr -d '\r'
}

field() { sed -n "s/^$1:\(.*\)$/\1/p"; }

show_log() {
    local dir=$1
    if [[ -s $dir/startup.log ]]; then
        say "last lines of $dir/startup.log:"
        tail -n 10 "$dir/startup.log" >&2
    fi
    if [[ -f $dir/redis.log ]]; then
        say "last lines of $dir/redis.log:"
        tail -n 20 "$dir/redis.log" >&2
    fi
}

lock_home() {
    mkdir -p "$home"
    exec 9>"$home/.lock"
    flock -w 300 9 || die "another redis-cluster.sh holds $home/.lock"
}

wipe_data() {
    local d
    while read -r d; do
        [[ -n $d ]] && rm -rf "$d"
    done < <(existing_dirs)
    rm -f "$home/cluster.conf" "$home/create.log"
}

need_node_arg() {
    local n
    if [[ $# -lt 1 ]] || ! is_uint "$1"; then die "missing node number"; fi
    n=$(configured_nodes) || die "no cluster on port $base_port in $home: run 'start' first"
    (($1 >= 1 && $1 <= n)) || die "node $1 does not exist (the cluster has $n nodes)"
}

# ---------------------------------------------------------------------------------------------
# Node configuration, start, readiness, stop.

write_node_config() {
    local dir port
    dir=$(node_dir "$1")
    port=$(node_port "$1")
    cat >"$dir/redis.conf" <<EOF
# Written by deploy/local/redis-cluster.sh at every start of this node: edits here are overwritten.
port $port
bind 127.0.0.1
# Loopback only and no password: protected mode (which only refuses non-loopback clients when no
# password is set) changes nothing here; it stays on as a safety net.
protected-mode yes
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
loglevel notice
always-show-logo no
dir $dir

cluster-enabled yes
cluster-config-file $dir/nodes.conf
# Small, for quick failovers in tests (a master is marked failing after this, then its replica is
# elected), but not so small that a busy 2-core machine causes spurious failovers.
cluster-node-timeout $node_timeout
# A replica always attempts the failover, however long its link to the master was down.
cluster-replica-validity-factor 0
cluster-require-full-coverage yes

# AOF, no RDB snapshots: a stop/start keeps the data, a SIGKILL loses at most ~1 s of writes.
appendonly yes
appendfsync everysec
save ""

maxmemory $maxmemory
maxmemory-policy $maxmemory_policy

# A master waits at most this long on shutdown for lagging replicas.
shutdown-timeout 3
# DEBUG SLEEP / DEBUG SEGFAULT for failure tests, from loopback only.
enable-debug-command local
EOF
}

# Starts node I unless it runs.
start_node() {
    local i=$1 dir port pid t
    dir=$(node_dir "$i")
    port=$(node_port "$i")
    if pid=$(node_pid "$i"); then
        say "node $i (127.0.0.1:$port) already runs (pid $pid)"
        return 0
    fi
    for t in "$port" $((port + 10000)); do
        tcp_open 127.0.0.1 "$t" && die "127.0.0.1:$t is already in use by another process: set REDIS_CLUSTER_PORT"
    done
    mkdir -p "$dir"
    write_node_config "$i"
    rm -f "$dir/redis.pid" "$dir/killed"
    say "starting node $i on 127.0.0.1:$port (bus $((port + 10000))) in $dir"
    # daemonize yes: redis-server forks, detaches (setsid) and the parent exits; config errors are
    # reported before the fork. 9>&-: the node must not inherit our lock file.
    if ! (cd "$dir" && exec "$redis_server" "$dir/redis.conf" </dev/null >"$dir/startup.log" 2>&1 9>&-); then
        show_log "$dir"
        die "redis-server could not start node $i"
    fi
    t=$((SECONDS + 10))
    until pid=$(node_pid "$i"); do
        if ((SECONDS >= t)); then
            show_log "$dir"
            die "node $i exited right after its start"
        fi
        sleep 0.2
    done
}

# Why node I is not ready (empty output: ready). See "Ready:" at the top.
node_problem() {
    local i=$1 out
    out=$(cli "$i" ping) || true
    [[ $out == PONG ]] || { echo "does not answer PING${out:+ ($out)}"; return 0; }
    out=$(cli "$i" cluster info | field cluster_state) || true
    [[ $out == ok ]] || { echo "cluster_state:${out:-?}"; return 0; }
    out=$(cli "$i" cluster nodes | awk '
        NF >= 9 && $3 ~ /master/ && ($3 ~ /fail/ || $8 != "connected") {
            sub(/@.*/, "", $2); printf "sees master %s (%s) %s, ", $2, $3, $8 }') || true
    [[ -z $out ]] || { echo "${out%, }"; return 0; }
    out=$(cli "$i" info replication) || true
    if [[ $(field role <<<"$out") == slave && $(field master_link_status <<<"$out") != up ]]; then
        echo "replica whose link to its master $(field master_port <<<"$out") is $(field master_link_status <<<"$out")"
    fi
    return 0
}

# The ids of the masters node I sees (not failing), sorted, on one line.
masters_seen() {
    cli "$1" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ { print $1 }' | sort | tr '\n' ' '
}

# Waits until every node of N that should run (not stopped by kill-node) is ready, and all of them
# agree on which nodes are masters, until DEADLINE (in SECONDS). Without the agreement, a script or
# test that reads one node's view right after a failover may pick the old master (seen: a reshard
# refused because its target had just become a replica).
wait_ready() {
    local n=$1 deadline=$2 i problem problems last="" view first
    while true; do
        problems=""
        for ((i = 1; i <= n; i++)); do
            [[ -f $(node_dir "$i")/killed ]] && continue
            node_pid "$i" >/dev/null || die "node $i (127.0.0.1:$(node_port "$i")) is not running: run '$0 start-node $i'"
            problem=$(node_problem "$i")
            [[ -n $problem ]] && problems+="node $i: $problem; "
        done
        if [[ -z $problems ]]; then
            first=""
            for ((i = 1; i <= n; i++)); do
                [[ -f $(node_dir "$i")/killed ]] && continue
                view=$(masters_seen "$i")
                if [[ -z $first ]]; then
                    first=$view
                elif [[ $view != "$first" ]]; then
                    problems="the nodes do not agree yet on which nodes are masters; "
                    break
                fi
            done
        fi
        [[ -z $problems ]] && return 0
        if [[ $problems != "$last" ]]; then
            say "waiting: ${problems%; }"
            last=$problems
        fi
        if ((SECONDS >= deadline)); then
            for ((i = 1; i <= n; i++)); do show_log "$(node_dir "$i")"; done 2>&1 | tail -n 60 >&2
            die "the cluster is not ready in time: ${problems%; }"
        fi
        sleep 0.5
    done
}

# Creates the cluster from N fresh nodes, then makes node I+3 the replica of node I.
create_cluster() {
    local n=$1 replicas i addrs=() t0=$SECONDS master want
    replicas=$((n / masters - 1))
    for ((i = 1; i <= n; i++)); do addrs+=("127.0.0.1:$(node_port "$i")"); done
    say "creating the cluster: redis-cli --cluster create ${addrs[*]} --cluster-replicas $replicas --cluster-yes"
    if ! timeout 120 "$redis_cli" --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
        --cluster-yes </dev/null >"$home/create.log" 2>&1; then
        tail -n 30 "$home/create.log" >&2
        die "redis-cli --cluster create failed (full output: $home/create.log)"
    fi
    sed -i 's/\x1b\[[0-9;]*m//g' "$home/create.log" # redis-cli colours even when not on a terminal
    grep -E '^\[(OK|ERR|WARNING)\]' "$home/create.log" | sed 's/^/    /' >&2 || true
    for ((i = 1; i <= masters; i++)); do
        [[ $(cli "$i" info replication | field role) == master ]] ||
            die "node $i is not a master after the creation (see $home/create.log)"
    done
    # With every node on one host, redis-cli pairs replicas and masters in its own order: make
    # node I+3 the replica of node I so that tests can rely on it.
    for ((i = masters + 1; i <= n; i++)); do
        want=$(cli $((i - masters)) cluster myid)
        master=$(cli "$i" cluster nodes | awk '$3 ~ /myself/ { print $4 }')
        if [[ $master != "$want" ]]; then
            say "node $i: CLUSTER REPLICATE node $((i - masters))"
            [[ $(cli "$i" cluster replicate "$want") == OK ]] || die "node $i: CLUSTER REPLICATE failed"
        fi
    done
    say "cluster created in $((SECONDS - t0)) s"
}

# Stops the redis-server processes of the node dirs given. MODE "term": SIGTERM (Redis flushes the
# AOF and nodes.conf), SIGKILL after $stop_timeout s. MODE "kill": SIGKILL at once.
# Arguments: MODE DIR...
stop_dirs() {
    local mode=$1 d pids p deadline signalled=() name
    shift
    for d in "$@"; do
        pids=$( (dir_pid "$d" || true; dir_pids "$d") | sort -u | tr '\n' ' ')
        pids=${pids% }
        [[ -n $pids ]] || continue
        name="node on port ${d##*/n}"
        # shellcheck disable=SC2086
        kill -CONT $pids 2>/dev/null || true
        if [[ $mode == kill ]]; then
            say "killing the $name (pid $pids) with SIGKILL"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        else
            say "stopping the $name (pid $pids)"
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        fi
        signalled+=("$pids")
    done
    deadline=$((SECONDS + stop_timeout))
    for pids in "${signalled[@]}"; do
        for p in $pids; do
            while kill -0 "$p" 2>/dev/null; do
                if ((SECONDS >= deadline)); then
                    say "pid $p did not stop within $stop_timeout s: SIGKILL"
                    kill -KILL "$p" 2>/dev/null || true
                    deadline=$((SECONDS + 10))
                fi
                sleep 0.2
            done
        done
    done
    for d in "$@"; do rm -f "$d/redis.pid"; done
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_start() {
    local replicas=0 n i d pid t0=$SECONDS fresh=0 known slots
    while [[ $# -gt 0 ]]; do
        case $1 in
            --replicas) replicas=1; shift ;;
            *) usage ;;
        esac
    done
    n=$((masters * (1 + replicas)))
    ensure_redis
    lock_home
    if [[ -f $home/cluster.conf ]] && [[ $(configured_nodes || true) != "$n" ]]; then
        while read -r d; do
            [[ -n $d ]] || continue
            if pid=$(dir_pid "$d"); then
                die "a cluster of another layout ($(tr '\n' ' ' <"$home/cluster.conf")) runs in $home (pid $pid in $d): run '$0 stop' first"
            fi
        done < <(existing_dirs)
        say "$home holds a cluster of another layout ($(tr '\n' ' ' <"$home/cluster.conf")): deleting it"
        wipe_data
    fi
    printf 'port=%s\nreplicas=%s\n' "$base_port" "$replicas" >"$home/cluster.conf"
    say "Redis $redis_version, $masters masters$( ((replicas)) && echo " + $masters replicas"), ports $base_port-$(node_port "$n"), data in $home"
    for ((i = 1; i <= n; i++)); do start_node "$i"; done
    for ((i = 1; i <= n; i++)); do
        until [[ $(cli "$i" ping || true) == PONG ]]; do
            ((SECONDS - t0 < start_timeout)) || { show_log "$(node_dir "$i")"; die "node $i does not answer PING"; }
            node_pid "$i" >/dev/null || { show_log "$(node_dir "$i")"; die "node $i exited"; }
            sleep 0.2
        done
    done
    # A fresh node knows only itself and has no slots; nodes restarted with their nodes.conf know
    # all N. Anything else is a half-made cluster.
    for ((i = 1; i <= n; i++)); do
        known=$(cli "$i" cluster info | field cluster_known_nodes)
        slots=$(cli "$i" cluster info | field cluster_slots_assigned)
        if [[ $known == 1 && $slots == 0 ]]; then
            fresh=$((fresh + 1))
        elif [[ $known != "$n" ]]; then
            die "node $i knows $known nodes, not $n: the cluster in $home is inconsistent: run '$0 stop --wipe', then start"
        fi
    done
    if ((fresh == n)); then
        create_cluster "$n"
    elif ((fresh > 0)); then
        die "$fresh of $n nodes are empty but the others belong to a cluster: run '$0 stop --wipe', then start"
    fi
    wait_ready "$n" $((t0 + start_timeout))
    say "ready in $((SECONDS - t0)) s: seed nodes 127.0.0.1:$base_port-$(node_port "$masters")"
}

cmd_wait() {
    local timeout=60 n
    while [[ $# -gt 0 ]]; do
        case $1 in
            --timeout) timeout=${2:-}; shift 2 || usage ;;
            --timeout=*) timeout=${1#*=}; shift ;;
            *) usage ;;
        esac
    done
    is_uint "$timeout" || die "--timeout must be a number of seconds"
    ensure_redis
    n=$(configured_nodes) || die "no cluster on port $base_port in $home: run 'start' first"
    wait_ready "$n" $((SECONDS + timeout))
    say "ready"
}

cmd_status() {
    local n i ok=0 pid port line state myself role master_id master_port problem nodes
    ensure_redis
    if ! n=$(configured_nodes); then
        echo "no cluster on port $base_port in $home"
        return 1
    fi
    echo "Redis $redis_version cluster of $n nodes on 127.0.0.1:$base_port-$(node_port "$n") in $home"
    for ((i = 1; i <= n; i++)); do
        port=$(node_port "$i")
        line="node $i 127.0.0.1:$port:"
        if ! pid=$(node_pid "$i"); then
            echo "$line not running$([[ -f $(node_dir "$i")/killed ]] && echo " (killed)")"
            ok=1
            continue
        fi
        line+=" pid $pid"
        if [[ $(cli "$i" ping || true) != PONG ]]; then
            echo "$line, does not answer PING"
            ok=1
            continue
        fi
        nodes=$(cli "$i" cluster nodes || true)
        myself=$(awk '$3 ~ /myself/' <<<"$nodes")
        role=$(awk '{ print ($3 ~ /master/) ? "master" : "replica" }' <<<"$myself")
        if [[ $role == master ]]; then
            line+=", master, slots $(cut -d' ' -f9- <<<"$myself")"
        else
            master_id=$(awk '{ print $4 }' <<<"$myself")
            master_port=$(awk -v id="$master_id" '$1 == id { sub(/@.*/, "", $2); sub(/.*:/, "", $2); print $2 }' <<<"$nodes")
            line+=", replica of node $((master_port - base_port + 1)) (link $(cli "$i" info replication | field master_link_status))"
        fi
        state=$(cli "$i" cluster info | field cluster_state)
        line+=", cluster_state $state"
        [[ $state == ok ]] || ok=1
        problem=$(node_problem "$i")
        [[ -z $problem || $state != ok ]] || line+=" ($problem)"
        echo "$line"
    done
    return "$ok"
}

cmd_nodes() {
    local n i
    ensure_redis
    n=$(configured_nodes) || die "no cluster on port $base_port in $home: run 'start' first"
    for ((i = 1; i <= n; i++)); do
        if node_pid "$i" >/dev/null && cli "$i" cluster nodes | sort -t' ' -k2,2; then
            return 0
        fi
    done
    die "no node answers"
}

cmd_stop() {
    local wipe=0 dirs=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --wipe) wipe=1; shift ;;
            *) usage ;;
        esac
    done
    [[ -d $home ]] || { say "nothing to stop"; return 0; }
    lock_home
    mapfile -t dirs < <(existing_dirs)
    if ((wipe)); then
        stop_dirs kill "${dirs[@]}" # the data goes anyway
        say "deleting the data in $home"
        wipe_data
        rm -f "$home/.lock"
        rmdir "$home" 2>/dev/null || true
    else
        stop_dirs term "${dirs[@]}"
        for d in "${dirs[@]}"; do rm -f "$d/killed"; done
    fi
    say "stopped"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1 n t0 pid
    shift
    case $cmd in
        start) cmd_start "$@" ;;
        wait) cmd_wait "$@" ;;
        status) cmd_status "$@" ;;
        nodes) cmd_nodes "$@" ;;
        stop) cmd_stop "$@" ;;
        wipe) cmd_stop --wipe ;;
        kill-node)
            need_node_arg "$@"
            lock_home
            if pid=$(node_pid "$1"); then
                stop_dirs kill "$(node_dir "$1")"
            else
                say "node $1 does not run"
            fi
            touch "$(node_dir "$1")/killed"
            ;;
        start-node)
            need_node_arg "$@"
            ensure_redis
            n=$(configured_nodes)
            lock_home
            t0=$SECONDS
            rm -f "$(node_dir "$1")/killed"
            start_node "$1"
            wait_ready "$n" $((SECONDS + start_timeout))
            say "node $1 is back in $((SECONDS - t0)) s: the cluster is ready"
            ;;
        failover)
            need_node_arg "$@"
            ensure_redis
            n=$(configured_nodes)
            lock_home
            t0=$SECONDS
            [[ $(cli "$1" role | head -n 1) == slave ]] || die "node $1 is not a replica"
            say "node $1: CLUSTER FAILOVER (graceful: its master hands over its slots)"
            [[ $(cli "$1" cluster failover) == OK ]] || die "node $1 refused CLUSTER FAILOVER"
            until [[ $(cli "$1" role | head -n 1) == master ]]; do
                ((SECONDS - t0 < start_timeout)) || die "node $1 did not become a master within $start_timeout s"
                sleep 0.2
            done
            wait_ready "$n" $((SECONDS + start_timeout))
            say "node $1 is a master now (in $((SECONDS - t0)) s); the cluster is ready"
            ;;
        move-slots)
            [[ $# -eq 3 ]] && is_uint "$3" || die "usage: move-slots FROM TO COUNT"
            need_node_arg "$1"
            need_node_arg "$2"
            ensure_redis
            n=$(configured_nodes)
            lock_home
            t0=$SECONDS
            local from_id to_id
            from_id=$(cli "$1" cluster myid)
            to_id=$(cli "$2" cluster myid)
            [[ -n $from_id && -n $to_id ]] || die "nodes $1 and $2 must both answer"
            [[ $(cli "$1" role | head -n 1) == master ]] || die "node $1 is not a master"
            [[ $(cli "$2" role | head -n 1) == master ]] || die "node $2 is not a master"
            say "moving $3 slots from node $1 to node $2"
            timeout "$start_timeout" "$redis_cli" --cluster reshard "127.0.0.1:$(node_port "$1")" \
                --cluster-from "$from_id" --cluster-to "$to_id" --cluster-slots "$3" \
                --cluster-yes >"$home/reshard.log" 2>&1 </dev/null ||
                { tail -n 20 "$home/reshard.log" >&2; die "the reshard failed (log: $home/reshard.log)"; }
            wait_ready "$n" $((SECONDS + start_timeout))
            say "moved $3 slots in $((SECONDS - t0)) s; the cluster is ready"
            ;;
        cli)
            need_node_arg "$@"
            ensure_redis
            n=$1
            shift
            exec "$redis_cli" -c -h 127.0.0.1 -p "$(node_port "$n")" "$@"
            ;;
        -h | --help | help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
