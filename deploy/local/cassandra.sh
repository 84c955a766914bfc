#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs a real Apache Cassandra 5.0 on loopback, as plain JVM processes built from the Maven Central
# artifacts (no Docker, no tarball): one node on 127.0.0.1, or three nodes on 127.0.0.1/2/3.
#
# Usage: deploy/local/cassandra.sh COMMAND [ARGS]
#   start [--nodes N]     start a cluster of N nodes (default $CASSANDRA_NODES, else 1) and wait until
#                         it is ready; does nothing for nodes that already run
#   wait [--timeout S]    wait until every node of the cluster is ready (default 180 s)
#   status                print each node's state; exit 0 only if every node runs and serves CQL
#   check                 like status, then ask every node with nodetool whether it sees all N
#                         nodes Up/Normal (about 1 s per node); exit 0 only if so
#   stop [--wipe]         stop every node (SIGTERM: Cassandra drains; SIGKILL once drained or after
#                         $CASSANDRA_STOP_TIMEOUT s); --wipe kills the nodes and deletes the data folder
#   wipe                  same as stop --wipe
#   stop-node I           stop node I gracefully (SIGTERM: Cassandra drains first)
#   kill-node I           kill node I at once (SIGKILL, like a crash)
#   start-node I          start node I again and wait until it is ready and sees its peers
#   restart-node I        stop-node I, then start-node I
#   pause-node I          freeze node I (SIGSTOP): it keeps its sockets but answers nothing
#   resume-node I         let a paused node I run again (SIGCONT)
#   nodetool [--node I] ARGS...   run nodetool against node I (default 1), e.g. `nodetool status`
#
# Readiness ("ready"), with no cqlsh: a node is ready when its process runs, its system.log has,
# since this start, the line "Starting listening for CQL clients on /IP:PORT", and a TCP connection
# to IP:PORT succeeds (bash /dev/tcp). In a cluster of N > 1 nodes, each node must also have logged
# "InetAddress /PEER:STORAGE_PORT is now UP" for every peer, with no later "is now DOWN", i.e. it
# sees the N-1 others through gossip (what `nodetool status` reports as UN, and what fills
# system.peers_v2). `check` confirms this with nodetool itself.
#
# Layout and files:
#   classpath   $CASSANDRA_CACHE/cassandra-<version>/lib/*.jar, resolved once with mvn from
#               deploy/local/cassandra/pom.xml (needs Maven Central once, then no network)
#   data        $CHAT_CASSANDRA_HOME/n<i>/: cassandra.yaml, logback.xml, data/, commitlog/, hints/,
#               saved_caches/, cdc_raw/, logs/system.log, output.log (JVM stdout/stderr), pid
#               $CHAT_CASSANDRA_HOME/cluster.conf records the node count. Starting with another
#               node count than the recorded one deletes the old (stopped) cluster's data first.
#   node i      listen/rpc address 127.0.0.i, same CQL and storage ports on every node, JMX on
#               127.0.0.1 port CASSANDRA_JMX_PORT + i - 1; num_tokens 1 with balanced initial
#               tokens, auto_bootstrap false, seed 127.0.0.1, started one after another.
#
# Environment (all optional):
#   CASSANDRA_VERSION        cassandra-all version from Maven Central (default 5.0.8)
#   CASSANDRA_NODES          default node count for `start` (default 1)
#   CASSANDRA_PORT           CQL port (default 9042)
#   CASSANDRA_STORAGE_PORT   internode port (default 7000)
#   CASSANDRA_JMX_PORT       JMX port of node 1; node i uses this + i - 1 (default 7199)
#   CASSANDRA_HEAP           maximum heap per node, -Xmx (default 1G for one node, 512M each for more)
#   CASSANDRA_HEAP_MIN       initial heap, -Xms (default 256M, at most CASSANDRA_HEAP): the heap
#                            grows on demand: an idle node measured 0.7-1.0 GB RSS instead of 1.5
#   CASSANDRA_PROCESSORS     -Dcassandra.available_processors (default 2)
#   CASSANDRA_COMMITLOG_SYNC batch (default), group or periodic. `periodic` acknowledges writes
#                            before they are replayable: a SIGKILLed node loses the last ~100 ms
#                            of acknowledged writes (docs/deploy.md, "Durability")
#   CASSANDRA_COMMITLOG_GROUP_WINDOW  the window of `group` sync (default 10ms)
#   CASSANDRA_PAXOS_VARIANT  v2 (default; one round trip fewer per lightweight transaction) or v1
#   CASSANDRA_JVM_OPTS       extra JVM options for the nodes (word-split)
#   CASSANDRA_START_TIMEOUT  seconds `start` waits for each node (default 180)
#   CASSANDRA_STOP_TIMEOUT   seconds before SIGKILL follows SIGTERM (default 60)
#   CASSANDRA_CLUSTER_NAME   cluster_name (default chat-test)
#   CASSANDRA_JAVA_HOME      a JDK 17 (default /usr/lib/jvm/java-17-openjdk-<arch>)
#   CASSANDRA_MVN_ARGS       extra mvn arguments for the one-time resolution (e.g. -s settings.xml)
#   CASSANDRA_CACHE          default ${XDG_CACHE_HOME:-$HOME/.cache}/chat-message-service
#   CHAT_CASSANDRA_HOME      default ${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/cassandra
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
templates=$here/cassandra

version=${CASSANDRA_VERSION:-5.0.8}
cache_root=${CASSANDRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-message-service}
cache=$cache_root/cassandra-$version
lib=$cache/lib
home=${CHAT_CASSANDRA_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/cassandra}
cql_port=${CASSANDRA_PORT:-9042}
commitlog_sync=${CASSANDRA_COMMITLOG_SYNC:-batch}
commitlog_group_window=${CASSANDRA_COMMITLOG_GROUP_WINDOW:-10ms}
paxos_variant=${CASSANDRA_PAXOS_VARIANT:-v2}
storage_port=${CASSANDRA_STORAGE_PORT:-7000}
jmx_base=${CASSANDRA_JMX_PORT:-7199}
processors=${CASSANDRA_PROCESSORS:-2}
start_timeout=${CASSANDRA_START_TIMEOUT:-180}
stop_timeout=${CASSANDRA_STOP_TIMEOUT:-60}
cluster_name=${CASSANDRA_CLUSTER_NAME:-chat-test}
max_nodes=9

say() { printf '[cassandra] %s\n' "$*" >&2; }
die() { printf '[cassandra] error: %s\n' "$*" >&2; exit 1; }

usage() {
    awk '/^# Usage:/ { p = 1 } /^# Readiness/ { exit } p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------------------------------------
# Prerequisites: a JDK 17 and (for the one-time resolution only) Maven.

jdk_override=${CASSANDRA_JAVA_HOME:-}
jdk_override_name=CASSANDRA_JAVA_HOME
jdk_why="Cassandra 5.0 runs on Java 11 or 17 only"
mvn_why="needed once to fetch Cassandra"
# shellcheck source=lib/jdk.sh
source "$here/lib/jdk.sh"

# Resolves cassandra-all and its runtime dependencies into $lib, once.
ensure_classpath() {
    [[ -f $lib/.complete ]] && return 0
    ensure_java
    ensure_mvn
    mkdir -p "$cache"
    exec 8>"$cache/.lock"
    flock 8
    if [[ -f $lib/.complete ]]; then
        exec 8>&-
        return 0
    fi
    say "resolving org.apache.cassandra:cassandra-all:$version and its dependencies with mvn (once; cached in $lib)"
    sed "s/@CASSANDRA_VERSION@/$version/g" "$templates/pom.xml" >"$cache/pom.xml"
    rm -rf "$cache/lib.tmp"
    local started=$SECONDS
    # shellcheck disable=SC2086 # CASSANDRA_MVN_ARGS is a list of words on purpose
    if ! JAVA_HOME=${java_bin%/bin/java} mvn -B -ntp -f "$cache/pom.xml" ${CASSANDRA_MVN_ARGS:-} \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DoutputDirectory="$cache/lib.tmp" -DincludeScope=runtime >"$cache/resolve.log" 2>&1; then
        tail -n 40 "$cache/resolve.log" >&2
        die "mvn could not resolve cassandra-all $version (full log: $cache/resolve.log)"
    fi
    [[ -f $cache/lib.tmp/cassandra-all-$version.jar ]] || die "mvn did not produce cassandra-all-$version.jar (log: $cache/resolve.log)"
    touch "$cache/lib.tmp/.complete"
    rm -rf "$lib"
    mv "$cache/lib.tmp" "$lib"
    say "resolved $(find "$lib" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
    exec 8>&-
}

# ---------------------------------------------------------------------------------------------
# Layout helpers.

node_ip() { echo "127.0.0.$1"; }
node_dir() { echo "$home/n$1"; }
node_jmx() { echo $((jmx_base + $1 - 1)); }

# Balanced Murmur3 token of node I (1-based) among N: (I-1) * floor(2^64 / N) - 2^63, the way ccm
# computes it, in 64-bit bash arithmetic without overflow.
node_token() {
    local i=$1 n=$2 max=9223372036854775807 q r step t k
    q=$((max / n))
    r=$((max % n))
    step=$((2 * q + (2 * (r + 1)) / n))
    t=$((-max - 1))
    for ((k = 1; k < i; k++)); do
        t=$((t + step / 2))
        t=$((t + step - step / 2))
    done
    echo "$t"
}

configured_nodes() {
    [[ -f $home/cluster.conf ]] || return 1
    sed -n 's/^nodes=//p' "$home/cluster.conf"
}

default_heap() { if (($1 == 1)); then echo 1G; else echo 512M; fi; }

heap_mib() {
    local h=$1
    case $h in
        *[gG]) echo $((${h%?} * 1024)) ;;
        *[mM]) echo $((${h%?})) ;;
        *) die "CASSANDRA_HEAP and CASSANDRA_HEAP_MIN must look like 1G or 512M, not '$h'" ;;
    esac
}

# PIDs of the JVMs running node I (by its exact config path), whether or not the pid file is right.
node_pids() {
    local needle p cmd
    needle="-Dcassandra.config=file://$(node_dir "$1")/cassandra.yaml"
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' '\n' 2>/dev/null <"$p/cmdline") || continue
        if grep -qxF -- "$needle" <<<"$cmd"; then echo "${p#/proc/}"; fi
    done
}

node_pid() {
    local dir pid
    dir=$(node_dir "$1")
    if [[ -f $dir/pid ]]; then
        pid=$(<"$dir/pid")
        if is_uint "$pid" && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" |
            grep -qxF -- "-Dcassandra.config=file://$dir/cassandra.yaml"; then
            echo "$pid"
            return 0
        fi
    fi
    pid=$(node_pids "$1" | head -n 1)
    [[ -n $pid ]] && echo "$pid"
}

# True if a TCP connection to IP PORT succeeds.
# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

log_size() {
    local log
    log=$(node_dir "$1")/logs/system.log
    if [[ -f $log ]]; then stat -c %s "$log"; else echo 0; fi
}

# Node I's system.log from byte offset OFF (default: the offset recorded when node I last started).
log_since() {
    local dir log off size
    dir=$(node_dir "$1")
    log=$dir/logs/system.log
    [[ -f $log ]] || return 0
    off=${2:-$(cat "$dir/log.offset" 2>/dev/null || echo 0)}
    size=$(stat -c %s "$log")
    if ! is_uint "$off" || ((size < off)); then off=0; fi # the log rolled over
    tail -c "+$((off + 1))" "$log"
}

# (grep reads the whole log, never -q: with pipefail, a grep that quits at the first match
# kills the writer with SIGPIPE once the rest of a large log no longer fits the pipe, and a
# node that serves CQL would count as not ready.)
cql_logged() {
    log_since "$1" | grep -F -- "Starting listening for CQL clients on /$(node_ip "$1"):$cql_port" >/dev/null
}

# Number of the N-1 peers that node I currently sees as UP: for each peer J, node I must have
# logged "InetAddress /J:PORT is now UP", with no later "is now DOWN", since the later of node I's
# own start and peer J's last start (start_node records node I's log size in n<I>/seen.<J> when it
# starts J), so that a peer killed and restarted quickly is not counted on a stale line.
peers_up() {
    local i=$1 n=$2 j count=0 last off seen dir
    dir=$(node_dir "$i")
    off=$(cat "$dir/log.offset" 2>/dev/null || echo 0)
    for ((j = 1; j <= n; j++)); do
        ((j == i)) && continue
        seen=$(cat "$dir/seen.$j" 2>/dev/null || echo 0)
        is_uint "$seen" && ((seen > off)) || seen=$off
        last=$(log_since "$i" "$seen" |
            grep -oE "InetAddress /$(node_ip "$j" | sed 's/\./\\./g'):$storage_port is now (UP|DOWN)" | tail -n 1)
        [[ $last == *UP ]] && count=$((count + 1))
    done
    echo "$count"
}

show_logs() {
    local dir
    dir=$(node_dir "$1")
    if [[ -s $dir/output.log ]]; then
        say "last lines of $dir/output.log:"
        tail -n 20 "$dir/output.log" >&2
    fi
    if [[ -f $dir/logs/system.log ]]; then
        say "last lines of $dir/logs/system.log:"
        tail -n 40 "$dir/logs/system.log" >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# Node configuration and JVM.

# The commit log's sync settings for cassandra.yaml.
commitlog_sync_settings() {
    case $commitlog_sync in
        batch) echo "commitlog_sync: batch" ;;
        group) printf 'commitlog_sync: group\ncommitlog_sync_group_window: %s\n' "$commitlog_group_window" ;;
        periodic) printf 'commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n' ;;
        *) die "CASSANDRA_COMMITLOG_SYNC must be batch, group or periodic, not '$commitlog_sync'" ;;
    esac
}

write_node_config() {
    local i=$1 n=$2 dir ip heap mem
    commitlog_sync_settings >/dev/null # refuses an unknown mode here, not inside the heredoc
    dir=$(node_dir "$i")
    ip=$(node_ip "$i")
    heap=${CASSANDRA_HEAP:-$(default_heap "$n")}
    mem=$(($(heap_mib "$heap") / 8))
    mkdir -p "$dir"/{data,commitlog,hints,saved_caches,cdc_raw,logs}
    cp "$templates/logback.xml" "$dir/logback.xml"
    cat >"$dir/cassandra.yaml" <<EOF
# Written by deploy/local/cassandra.sh at every start of this node: edits here are overwritten.
cluster_name: '$cluster_name'
num_tokens: 1
initial_token: $(node_token "$i" "$n")
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$(node_ip 1):$storage_port"
listen_address: $ip
rpc_address: $ip
storage_port: $storage_port
native_transport_port: $cql_port
start_native_transport: true
auto_bootstrap: false
storage_compatibility_mode: NONE
# Nodes start one after another: do not block startup waiting for peers that cannot be up yet.
block_for_peers_timeout_in_secs: 0

data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
hints_directory: $dir/hints
saved_caches_directory: $dir/saved_caches
cdc_raw_directory: $dir/cdc_raw
# An acknowledged write must survive a crash of the process: with \`periodic\` sync, Cassandra
# acknowledges a write once it is in the commit log's mmapped segment, but replay stops at the
# last sync marker (written every 100 ms, fsynced every period), so a SIGKILL loses the writes
# behind it. \`batch\` and \`group\` acknowledge only after the marker and an fsync.
$(commitlog_sync_settings)
commitlog_segment_size: 16MiB
commitlog_total_space: 256MiB

# Small footprint for a shared 2-core machine.
memtable_allocation_type: heap_buffers
memtable_heap_space: ${mem}MiB
memtable_offheap_space: ${mem}MiB
memtable_flush_writers: 1
file_cache_size: 32MiB
networking_cache_size: 32MiB
key_cache_size: 16MiB
counter_cache_size: 8MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
auto_snapshot: false

# Tests share the CPU with compilers: be lenient before reporting a timeout.
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
counter_write_request_timeout: 10000ms
cas_contention_timeout: 5000ms
truncate_request_timeout: 60000ms
# request_timeout stays at its default (10 s): a draining node waits up to that long for the
# callbacks to peers that are gone.

# Paxos v2: fewer round trips and writes per lightweight transaction (the send path's claim).
paxos_variant: $paxos_variant

authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
EOF
}

jpms_flags=(
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
)

server_jvm_args() {
    local i=$1 n=$2 dir heap heap_min jamm
    dir=$(node_dir "$i")
    heap=${CASSANDRA_HEAP:-$(default_heap "$n")}
    heap_min=${CASSANDRA_HEAP_MIN:-256M}
    heap_mib "$heap" >/dev/null
    heap_mib "$heap_min" >/dev/null
    if (($(heap_mib "$heap_min") > $(heap_mib "$heap"))); then heap_min=$heap; fi
    jvm_args=(
        "-Xms$heap_min" "-Xmx$heap" -Xss256k -XX:+ExitOnOutOfMemoryError
        -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:MaxGCPauseMillis=300
        -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:+PerfDisableSharedMem
        -ea -da:net.openhft...
        "${jpms_flags[@]}"
        -Dio.netty.tryReflectionSetAccessible=true
        -Dio.netty.allocator.useCacheForAllThreads=true
        -Dio.netty.allocator.maxOrder=11
        -Djava.net.preferIPv4Stack=true
        -Dcassandra-foreground=yes
        "-Dcassandra.config=file://$dir/cassandra.yaml"
        "-Dcassandra.storagedir=$dir"
        "-Dcassandra.logdir=$dir/logs"
        "-Dcassandra.triggers_dir=$dir/triggers"
        "-Dlogback.configurationFile=$dir/logback.xml"
        "-Dcassandra.jmx.local.port=$(node_jmx "$i")"
        "-Dcassandra.available_processors=$processors"
        -Dcassandra.skip_wait_for_gossip_to_settle=0
        # The gossip shadow round of a restarted node whose peers are all down (e.g. node 1 when
        # a stopped 3-node cluster starts again) gives up after the ring delay: 5 s, not 30 s.
        -Dcassandra.ring_delay_ms=5000
    )
    # jamm measures object sizes (memtable accounting); without the agent Cassandra falls back to
    # Unsafe-based estimates.
    jamm=$(find "$lib" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)
    [[ -n $jamm ]] && jvm_args+=("-javaagent:$jamm")
    # shellcheck disable=SC2206 # word-split on purpose
    [[ -n ${CASSANDRA_JVM_OPTS:-} ]] && jvm_args+=(${CASSANDRA_JVM_OPTS})
    return 0
}

# ---------------------------------------------------------------------------------------------
# Starting, waiting, stopping.

# Starts node I of N in the background, unless it already runs.
start_node() {
    local i=$1 n=$2 dir ip pid port j
    dir=$(node_dir "$i")
    ip=$(node_ip "$i")
    if pid=$(node_pid "$i"); then
        say "node $i ($ip) already runs (pid $pid)"
        return 0
    fi
    for port in "$cql_port" "$storage_port"; do
        tcp_open "$ip" "$port" && die "$ip:$port is already in use by another process: set CASSANDRA_PORT / CASSANDRA_STORAGE_PORT"
    done
    tcp_open 127.0.0.1 "$(node_jmx "$i")" && die "JMX port 127.0.0.1:$(node_jmx "$i") is already in use: set CASSANDRA_JMX_PORT"
    write_node_config "$i" "$n"
    server_jvm_args "$i" "$n"
    log_size "$i" >"$dir/log.offset"
    rm -f "$dir"/seen.*
    for ((j = 1; j <= n; j++)); do
        ((j == i)) || [[ ! -d $(node_dir "$j") ]] || log_size "$j" >"$(node_dir "$j")/seen.$i"
    done
    say "starting node $i on $ip (CQL $cql_port, storage $storage_port, JMX 127.0.0.1:$(node_jmx "$i"), heap ${CASSANDRA_HEAP:-$(default_heap "$n")}) in $dir"
    # setsid: own session, so the node outlives this shell and its terminal; 8>&- 9>&-: the node
    # must not inherit our lock files.
    (cd "$dir" && exec setsid nohup "$java_bin" "${jvm_args[@]}" -cp "$lib/*" \
        org.apache.cassandra.service.CassandraDaemon </dev/null >"$dir/output.log" 2>&1 8>&- 9>&-) &
    pid=$!
    echo "$pid" >"$dir/pid"
    sleep 1
    if ! tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "-Dcassandra.config=file://$dir/cassandra.yaml"; then
        pid=$(node_pids "$i" | head -n 1)
        if [[ -z $pid ]]; then
            show_logs "$i"
            die "node $i exited right after its start"
        fi
        echo "$pid" >"$dir/pid"
    fi
}

# Waits until node I serves CQL (deadline in SECONDS).
wait_node() {
    local i=$1 deadline=$2 ip
    ip=$(node_ip "$i")
    while true; do
        if ! node_pid "$i" >/dev/null; then
            show_logs "$i"
            die "node $i ($ip) is not running"
        fi
        if cql_logged "$i" && tcp_open "$ip" "$cql_port"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_logs "$i"
            die "node $i ($ip) did not serve CQL on port $cql_port in time (see $(node_dir "$i")/logs/system.log)"
        fi
        sleep 1
    done
}

# Waits until every node of N sees the N-1 others UP (deadline in SECONDS).
wait_gossip() {
    local n=$1 deadline=$2 i up
    ((n > 1)) || return 0
    for ((i = 1; i <= n; i++)); do
        while true; do
            node_pid "$i" >/dev/null || { show_logs "$i"; die "node $i is not running"; }
            up=$(peers_up "$i" "$n")
            ((up == n - 1)) && break
            if ((SECONDS >= deadline)); then
                show_logs "$i"
                die "node $i sees only $up of its $((n - 1)) peers up"
            fi
            sleep 1
        done
    done
}

# Stops the given nodes. MODE "term": SIGTERM to all of them at once; Cassandra then drains: it
# announces its shutdown to its peers, waits for the callbacks of messages in flight (up to
# request_timeout when peers are gone too), flushes memtables and logs "Cassandra shutdown
# complete". The JVM can still linger after that line, so the node then gets SIGKILL, as it does
# if it still runs after $CASSANDRA_STOP_TIMEOUT s.
# MODE "kill": SIGKILL at once, like a crash.
# Arguments: MODE I...
stop_nodes() {
    local mode=$1 i pids p entry deadline signalled=()
    shift
    for i in "$@"; do
        pids=$( (node_pid "$i" || true; node_pids "$i") | sort -u | tr '\n' ' ')
        pids=${pids% }
        [[ -n $pids ]] || continue
        log_size "$i" >"$(node_dir "$i")/stop.offset"
        # A paused node (pause-node) gets no SIGTERM until it runs again.
        # shellcheck disable=SC2086
        kill -CONT $pids 2>/dev/null || true
        if [[ $mode == kill ]]; then
            say "killing node $i ($(node_ip "$i"), pid $pids) with SIGKILL"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        else
            say "stopping node $i ($(node_ip "$i"), pid $pids)"
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        fi
        signalled+=("$i:$pids")
    done
    deadline=$((SECONDS + stop_timeout))
    for entry in "${signalled[@]}"; do
        i=${entry%%:*}
        for p in ${entry#*:}; do
            while kill -0 "$p" 2>/dev/null; do
                if ((SECONDS >= deadline)); then
                    say "node $i (pid $p) did not stop within ${stop_timeout} s: SIGKILL"
                    kill -KILL "$p" 2>/dev/null || true
                    deadline=$((SECONDS + 10))
                elif log_since "$i" "$(cat "$(node_dir "$i")/stop.offset")" | grep -F -- "Cassandra shutdown complete" >/dev/null; then
                    sleep 0.5
                    kill -KILL "$p" 2>/dev/null || true
                fi
                sleep 0.5
            done
        done
    done
    for i in "$@"; do rm -f "$(node_dir "$i")/pid" "$(node_dir "$i")/stop.offset"; done
}

existing_node_indexes() {
    local d
    for d in "$home"/n[0-9]*; do
        [[ -d $d ]] && echo "${d##*/n}"
    done
    return 0
}

lock_home() {
    mkdir -p "$home"
    exec 9>"$home/.lock"
    flock -w 900 9 || die "another cassandra.sh holds $home/.lock"
}

wipe_data() {
    local i
    for i in $(existing_node_indexes); do
        [[ $i =~ ^[0-9]+$ ]] && rm -rf "${home:?}/n$i"
    done
    rm -f "$home/cluster.conf"
}

need_node_arg() {
    if [[ $# -lt 1 ]] || ! is_uint "$1"; then die "missing node number"; fi
    local n
    n=$(configured_nodes) || die "no cluster in $home: run 'start' first"
    (($1 >= 1 && $1 <= n)) || die "node $1 does not exist (the cluster has $n node(s))"
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_start() {
    local n=${CASSANDRA_NODES:-1} old i t0=$SECONDS
    while [[ $# -gt 0 ]]; do
        case $1 in
            --nodes) n=${2:-}; shift 2 || usage ;;
            --nodes=*) n=${1#*=}; shift ;;
            *) usage ;;
        esac
    done
    if ! is_uint "$n" || ((n < 1 || n > max_nodes)); then die "--nodes must be between 1 and $max_nodes"; fi
    heap_mib "${CASSANDRA_HEAP:-1G}" >/dev/null
    heap_mib "${CASSANDRA_HEAP_MIN:-256M}" >/dev/null
    ensure_java
    ensure_classpath
    lock_home
    if old=$(configured_nodes) && [[ $old != "$n" ]]; then
        for i in $(existing_node_indexes); do
            if pid=$(node_pid "$i"); then
                die "a $old-node cluster runs (node $i, pid $pid): run '$0 stop' before starting $n node(s)"
            fi
        done
        say "$home holds a $old-node cluster: deleting its data to create a $n-node cluster"
        wipe_data
    fi
    echo "nodes=$n" >"$home/cluster.conf"
    for ((i = 1; i <= n; i++)); do
        start_node "$i" "$n"
        wait_node "$i" $((SECONDS + start_timeout))
        say "node $i serves CQL on $(node_ip "$i"):$cql_port"
    done
    wait_gossip "$n" $((SECONDS + start_timeout))
    say "ready: $n node(s) in $((SECONDS - t0)) s; contact point $(node_ip 1):$cql_port"
}

cmd_wait() {
    local timeout=180 n i deadline
    while [[ $# -gt 0 ]]; do
        case $1 in
            --timeout) timeout=${2:-}; shift 2 || usage ;;
            --timeout=*) timeout=${1#*=}; shift ;;
            *) usage ;;
        esac
    done
    is_uint "$timeout" || die "--timeout must be a number of seconds"
    n=$(configured_nodes) || die "no cluster in $home: run 'start' first"
    deadline=$((SECONDS + timeout))
    for ((i = 1; i <= n; i++)); do wait_node "$i" "$deadline"; done
    wait_gossip "$n" "$deadline"
    say "ready: $n node(s); contact point $(node_ip 1):$cql_port"
}

cmd_status() {
    local n i ok=0 pid ip line
    if ! n=$(configured_nodes); then
        echo "no cluster configured in $home"
        return 1
    fi
    echo "cluster of $n node(s) in $home (Cassandra $version)"
    for ((i = 1; i <= n; i++)); do
        ip=$(node_ip "$i")
        if pid=$(node_pid "$i"); then
            line="node $i $ip: running (pid $pid)"
            if tcp_open "$ip" "$cql_port"; then
                line+=", CQL $ip:$cql_port reachable"
            else
                line+=", CQL $ip:$cql_port NOT reachable"
                ok=1
            fi
            ((n > 1)) && line+=", sees $(peers_up "$i" "$n")/$((n - 1)) peers up"
        else
            line="node $i $ip: not running"
            ok=1
        fi
        echo "$line"
    done
    return "$ok"
}

run_nodetool() {
    local i=$1
    shift
    ensure_java
    [[ -f $lib/.complete ]] || die "the classpath is not resolved yet: run 'start' first"
    "$java_bin" -Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem \
        "${jpms_flags[@]}" -Djava.net.preferIPv4Stack=true \
        "-Dlogback.configurationFile=$templates/logback-tools.xml" \
        "-Dcassandra.storagedir=$(node_dir "$i")" \
        -cp "$lib/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$(node_jmx "$i")" "$@"
}

cmd_check() {
    local n i ok=0 out un
    cmd_status || ok=1
    n=$(configured_nodes)
    for ((i = 1; i <= n; i++)); do
        if out=$(run_nodetool "$i" status 2>&1); then
            un=$(grep -cE '^UN ' <<<"$out" || true)
            echo "node $i: nodetool status shows $un/$n nodes UN"
            ((un == n)) || { ok=1; printf '%s\n' "$out"; }
        else
            echo "node $i: nodetool failed: $(tail -n 1 <<<"$out")"
            ok=1
        fi
    done
    return "$ok"
}

cmd_stop() {
    local wipe=0 i
    while [[ $# -gt 0 ]]; do
        case $1 in
            --wipe) wipe=1; shift ;;
            *) usage ;;
        esac
    done
    [[ -d $home ]] || { say "nothing to stop"; return 0; }
    lock_home
    # shellcheck disable=SC2046
    if ((wipe)); then
        stop_nodes kill $(existing_node_indexes) # the data goes anyway: no need to drain
    else
        stop_nodes term $(existing_node_indexes)
    fi
    if ((wipe)); then
        say "deleting the data in $home"
        wipe_data
        rm -f "$home/.lock"
        rmdir "$home" 2>/dev/null || true
    fi
    say "stopped"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1 n
    shift
    case $cmd in
        start) cmd_start "$@" ;;
        wait) cmd_wait "$@" ;;
        status) cmd_status "$@" ;;
        check) cmd_check "$@" ;;
        stop) cmd_stop "$@" ;;
        wipe) cmd_stop --wipe ;;
        stop-node | kill-node)
            need_node_arg "$@"
            lock_home
            if [[ $cmd == kill-node ]]; then stop_nodes kill "$1"; else stop_nodes term "$1"; fi
            ;;
        pause-node | resume-node)
            # SIGSTOP freezes the JVM with its sockets open: clients see a hung server, not a
            # refused connection (what request timeouts are for).
            need_node_arg "$@"
            local pid
            pid=$(node_pid "$1") || die "node $1 is not running"
            if [[ $cmd == pause-node ]]; then
                kill -STOP "$pid"
                say "node $1 (pid $pid) paused"
            else
                kill -CONT "$pid"
                say "node $1 (pid $pid) resumed"
            fi
            ;;
        start-node | restart-node)
            need_node_arg "$@"
            n=$(configured_nodes)
            ensure_java
            ensure_classpath
            lock_home
            [[ $cmd == restart-node ]] && stop_nodes term "$1"
            start_node "$1" "$n"
            wait_node "$1" $((SECONDS + start_timeout))
            wait_gossip "$n" $((SECONDS + start_timeout))
            say "node $1 is back: $n node(s) ready"
            ;;
        nodetool)
            n=1
            if [[ ${1:-} == --node ]]; then
                n=${2:-}
                shift 2 || usage
            fi
            is_uint "$n" || die "--node needs a node number"
            run_nodetool "$n" "$@"
            ;;
        -h | --help | help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
