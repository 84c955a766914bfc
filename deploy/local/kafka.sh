#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs a real Apache Kafka broker on loopback: one KRaft node that is both broker and controller,
# as a plain JVM process built from the Maven Central artifacts (no Docker, no tarball).
#
# Usage: deploy/local/kafka.sh COMMAND [ARGS]
#   start                 format the storage if needed, start the broker and wait until it answers;
#                         does nothing if it already runs
#   wait [--timeout S]    wait until the broker answers (default 120 s)
#   status                print the broker's state; exit 0 only if it runs and answers ApiVersions
#   stop [--wipe]         stop the broker (SIGTERM: controlled shutdown; SIGKILL after
#                         $KAFKA_STOP_TIMEOUT s); --wipe kills it and deletes the data folder
#   wipe                  same as stop --wipe
#   kill                  kill the broker at once (SIGKILL, like a crash); the data stays
#   topics [ARGS...]      no ARGS: list the topics; else run TopicCommand with ARGS, e.g.
#                         `topics --create --topic t --partitions 3` or `topics --describe`
#                         (--bootstrap-server is added)
#   tool NAME|CLASS [ARGS...]   run a Kafka tool on the tools classpath; NAME is one of
#                         console-producer, console-consumer, verifiable-producer,
#                         verifiable-consumer, api-versions, consumer-groups, get-offsets, topics,
#                         storage; pass --bootstrap-server 127.0.0.1:$KAFKA_PORT yourself
#
# Readiness ("answers"): the process runs, its server.log has, since this start, the line
# "Kafka Server started" (KafkaRaftServer), and an ApiVersions v0 request sent over bash /dev/tcp
# to 127.0.0.1:$KAFKA_PORT gets a response with error code 0 (no JVM needed for the check).
#
# Layout and files:
#   classpath   $KAFKA_CACHE/kafka-<version>/lib/*.jar: org.apache.kafka:kafka_2.13 (broker,
#               kafka.tools.StorageTool) and org.apache.kafka:kafka-tools (TopicCommand, console
#               producer/consumer), plus an SLF4J binding, resolved once with mvn from
#               deploy/local/kafka/pom.xml (needs Maven Central once, then no network)
#   data        $CHAT_KAFKA_HOME/: server.properties and the log config (rewritten at every
#               start), cluster.id, kafka.version, data/ (log.dirs, KRaft metadata log included),
#               logs/server.log, output.log (JVM stdout/stderr: warnings and errors only), pid
#   storage     formatted once (kafka.tools.StorageTool format) with a random cluster id kept in
#               cluster.id; static quorum: controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
#   broker      node.id 1, PLAINTEXT on 127.0.0.1:$KAFKA_PORT (advertised the same), controller
#               on 127.0.0.1:$KAFKA_CONTROLLER_PORT, auto.create.topics.enable=false,
#               num.partitions=1, replication factors 1, 16 MiB segments, 1 h / 128 MiB retention
#
# Versions: Kafka 4.x logs through log4j2 (kafka/log4j2.xml), Kafka 3.x through reload4j
# (kafka/log4j.properties); the script picks by the major version. Data formatted by one version
# is not started by another: run `stop --wipe` first.
#
# Environment (all optional):
#   KAFKA_VERSION           org.apache.kafka:kafka_2.13 version (default 4.4.0; 3.9.x works too)
#   KAFKA_PORT              client (PLAINTEXT) port (default 9092)
#   KAFKA_CONTROLLER_PORT   KRaft controller port (default 9093)
#   KAFKA_HEAP              maximum heap, -Xmx (default 512M)
#   KAFKA_HEAP_MIN          initial heap, -Xms (default 128M, at most KAFKA_HEAP)
#   KAFKA_JVM_OPTS          extra JVM options for the broker (word-split)
#   KAFKA_START_TIMEOUT     seconds `start` waits for the broker (default 120)
#   KAFKA_STOP_TIMEOUT      seconds before SIGKILL follows SIGTERM (default 30)
#   KAFKA_JAVA_HOME         a JDK 17 (default /usr/lib/jvm/java-17-openjdk-<arch>)
#   KAFKA_MVN_ARGS          extra mvn arguments for the one-time resolution (e.g. -s settings.xml)
#   KAFKA_CACHE             default ${XDG_CACHE_HOME:-$HOME/.cache}/chat-message-service
#   CHAT_KAFKA_HOME         default ${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/kafka
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
templates=$here/kafka

version=${KAFKA_VERSION:-4.4.0}
cache_root=${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-message-service}
cache=$cache_root/kafka-$version
lib=$cache/lib
home=${CHAT_KAFKA_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/kafka}
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
heap=${KAFKA_HEAP:-512M}
heap_min=${KAFKA_HEAP_MIN:-128M}
start_timeout=${KAFKA_START_TIMEOUT:-120}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}
bootstrap=127.0.0.1:$port
marker="-Dchat.kafka.home=$home"

say() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] error: %s\n' "$*" >&2; exit 1; }

usage() {
    awk '/^# Usage:/ { p = 1 } /^# Readiness/ { exit } p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "KAFKA_VERSION must look like 4.4.0, not '$version'"
major=${version%%.*}
((major >= 3)) || die "KAFKA_VERSION $version: only Kafka 3.x (KRaft) and 4.x are supported"
if ((major >= 4)); then logging=log4j2; else logging=reload4j; fi
is_uint "$port" || die "KAFKA_PORT must be a number"
is_uint "$controller_port" || die "KAFKA_CONTROLLER_PORT must be a number"
[[ $port != "$controller_port" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# ---------------------------------------------------------------------------------------------
# Prerequisites: a JDK 17 and (for the one-time resolution only) Maven.

jdk_override=${KAFKA_JAVA_HOME:-}
jdk_override_name=KAFKA_JAVA_HOME
jdk_why=""
mvn_why="needed once to fetch Kafka"
# shellcheck source=lib/jdk.sh
source "$here/lib/jdk.sh"

# Lists the classes of the Kafka jars into $1 (one binary name a line), to pick main classes that
# moved between versions.
list_classes() {
    local out=$1 jar jar_tool
    jar_tool=$(dirname "$java_bin")/jar
    : >"$out"
    for jar in "$2"/kafka*.jar; do
        if command -v unzip >/dev/null 2>&1; then
            unzip -Z1 "$jar"
        else
            "$jar_tool" tf "$jar"
        fi | sed -n 's/\.class$//p' | tr / . >>"$out"
    done
}

# Resolves kafka_2.13 + kafka-tools and their runtime dependencies into $lib, once.
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
    say "resolving org.apache.kafka:kafka_2.13:$version and kafka-tools with mvn (once; cached in $lib)"
    sed "s/@KAFKA_VERSION@/$version/g" "$templates/pom.xml" >"$cache/pom.xml"
    rm -rf "$cache/lib.tmp"
    local started=$SECONDS
    # shellcheck disable=SC2086 # KAFKA_MVN_ARGS is a list of words on purpose
    if ! JAVA_HOME=${java_bin%/bin/java} mvn -B -ntp -f "$cache/pom.xml" ${KAFKA_MVN_ARGS:-} \
        -Dkafka.logging="$logging" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DoutputDirectory="$cache/lib.tmp" -DincludeScope=runtime >"$cache/resolve.log" 2>&1; then
        tail -n 40 "$cache/resolve.log" >&2
        die "mvn could not resolve Kafka $version (full log: $cache/resolve.log)"
    fi
    [[ -f $cache/lib.tmp/kafka_2.13-$version.jar ]] || die "mvn did not produce kafka_2.13-$version.jar (log: $cache/resolve.log)"
    list_classes "$cache/lib.tmp/.classes" "$cache/lib.tmp"
    touch "$cache/lib.tmp/.complete"
    rm -rf "$lib"
    mv "$cache/lib.tmp" "$lib"
    say "resolved $(find "$lib" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
    exec 8>&-
}

# The first of the given classes that exists in this version's Kafka jars.
main_class() {
    local c
    for c in "$@"; do
        if grep -qxF -- "$c" "$lib/.classes"; then
            echo "$c"
            return 0
        fi
    done
    die "none of $* exists in Kafka $version"
}

tool_class() {
    case $1 in
        topics) main_class org.apache.kafka.tools.TopicCommand kafka.admin.TopicCommand ;;
        console-producer) main_class org.apache.kafka.tools.ConsoleProducer kafka.tools.ConsoleProducer ;;
        console-consumer) main_class org.apache.kafka.tools.consumer.ConsoleConsumer kafka.tools.ConsoleConsumer ;;
        verifiable-producer) main_class org.apache.kafka.tools.VerifiableProducer ;;
        verifiable-consumer) main_class org.apache.kafka.tools.VerifiableConsumer ;;
        api-versions) main_class org.apache.kafka.tools.BrokerApiVersionsCommand kafka.admin.BrokerApiVersionsCommand ;;
        consumer-groups) main_class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand kafka.admin.ConsumerGroupCommand ;;
        get-offsets) main_class org.apache.kafka.tools.GetOffsetShell kafka.tools.GetOffsetShell ;;
        storage) main_class kafka.tools.StorageTool org.apache.kafka.tools.StorageTool ;;
        *.*) echo "$1" ;;
        *) die "unknown tool '$1'" ;;
    esac
}

# Logging options for a JVM: KIND is "server" or "tools".
log_opts() {
    if [[ $logging == log4j2 ]]; then
        if [[ $1 == server ]]; then
            echo "-Dlog4j2.configurationFile=file:$home/log4j2.xml"
        else
            echo "-Dlog4j2.configurationFile=file:$templates/log4j2-tools.xml"
        fi
    else
        if [[ $1 == server ]]; then
            echo "-Dlog4j.configuration=file:$home/log4j.properties"
        else
            echo "-Dlog4j.configuration=file:$templates/log4j-tools.properties"
        fi
    fi
}

# Runs main class CLASS with ARGS on the Kafka classpath in a small client JVM.
run_tool() {
    local class=$1
    shift
    ensure_java
    [[ -f $lib/.complete ]] || die "the classpath of Kafka $version is not resolved yet: run 'start' first"
    "$java_bin" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem \
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true "$(log_opts tools)" \
        "-Dkafka.logs.dir=${TMPDIR:-/tmp}" -cp "$lib/*" "$class" "$@"
}

# ---------------------------------------------------------------------------------------------
# Process and readiness helpers.

# PIDs of the JVMs running this broker (by the marker in their command line).
broker_pids() {
    local p
    for p in /proc/[0-9]*; do
        if tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qxF -- "$marker"; then echo "${p#/proc/}"; fi
    done
    return 0
}

broker_pid() {
    local pid
    if [[ -f $home/pid ]]; then
        pid=$(<"$home/pid")
        if is_uint "$pid" && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$marker"; then
            echo "$pid"
            return 0
        fi
    fi
    pid=$(broker_pids | head -n 1)
    [[ -n $pid ]] && echo "$pid"
}

# True if a TCP connection to IP PORT succeeds.
# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# True if the broker on 127.0.0.1:PORT answers an ApiVersions v0 request (api key 18, correlation
# id 7, client id "chat-probe") with error code 0: response = size(4) correlation(4) error(2) ...
# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
api_versions_ok() {
    local reply
    reply=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "\x00\x00\x00\x14\x00\x12\x00\x00\x00\x00\x00\x07\x00\x0achat-probe" >&3
        head -c 10 <&3 | od -An -tx1' 127.0.0.1 "$1" 2>/dev/null | tr -d ' \n') || return 1
    [[ ${reply:8:12} == 000000070000 ]]
}

log_file() { echo "$home/logs/server.log"; }

log_size() {
    local log
    log=$(log_file)
    if [[ -f $log ]]; then stat -c %s "$log"; else echo 0; fi
}

# server.log since the offset recorded at the last start (whole file if it rolled over).
log_since() {
    local log off size
    log=$(log_file)
    [[ -f $log ]] || return 0
    off=$(cat "$home/log.offset" 2>/dev/null || echo 0)
    size=$(stat -c %s "$log")
    if ! is_uint "$off" || ((size < off)); then off=0; fi
    tail -c "+$((off + 1))" "$log"
}

started_logged() { log_since | grep -F -- "Kafka Server started" >/dev/null; }

show_logs() {
    if [[ -s $home/output.log ]]; then
        say "last lines of $home/output.log:"
        tail -n 20 "$home/output.log" >&2
    fi
    if [[ -f $(log_file) ]]; then
        say "last lines of $(log_file):"
        tail -n 30 "$(log_file)" >&2
    fi
}

lock_home() {
    mkdir -p "$home"
    exec 9>"$home/.lock"
    flock -w 300 9 || die "another kafka.sh holds $home/.lock"
}

# ---------------------------------------------------------------------------------------------
# Configuration, storage format, JVM.

write_config() {
    mkdir -p "$home/data" "$home/logs"
    if [[ $logging == log4j2 ]]; then
        cp "$templates/log4j2.xml" "$home/log4j2.xml"
    else
        cp "$templates/log4j.properties" "$home/log4j.properties"
    fi
    cat >"$home/server.properties" <<EOF
# Written by deploy/local/kafka.sh at every start: edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$home/data

# The service creates its topics itself.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1

# One node: replication factor 1 and few partitions for the internal topics.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0

# Small segments and retention for tests.
log.segment.bytes=16777216
log.retention.ms=3600000
log.retention.bytes=134217728
log.retention.check.interval.ms=60000
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216

# A shared 2-core machine.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1

# After a crash (kill), the restarted broker cannot register until the controller expires the
# old registration's session (DUPLICATE_BROKER_REGISTRATION): 5 s instead of the default 9 s.
broker.session.timeout.ms=5000
broker.heartbeat.interval.ms=1000
EOF
}

# Formats the KRaft storage once, with a cluster id generated once and kept in cluster.id.
format_storage() {
    local id class
    [[ -f $home/data/meta.properties ]] && return 0
    if [[ -f $home/cluster.id ]]; then
        id=$(<"$home/cluster.id")
    else
        # Like org.apache.kafka.common.Uuid.randomUuid(): 16 random bytes, URL-safe base64 without
        # padding (22 characters), redrawn if it starts with '-'.
        id=-
        while [[ $id == -* ]]; do
            id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        done
        echo "$id" >"$home/cluster.id"
    fi
    class=$(tool_class storage)
    say "formatting the KRaft storage in $home/data (cluster id $id)"
    if ! run_tool "$class" format --ignore-formatted -t "$id" -c "$home/server.properties" \
        >"$home/format.log" 2>&1; then
        cat "$home/format.log" >&2
        die "formatting the storage failed"
    fi
}

heap_mib() {
    local h=$1
    case $h in
        *[gG]) echo $((${h%?} * 1024)) ;;
        *[mM]) echo $((${h%?})) ;;
        *) die "KAFKA_HEAP and KAFKA_HEAP_MIN must look like 1G or 512M, not '$h'" ;;
    esac
}

server_jvm_args() {
    local hmin=$heap_min
    if (($(heap_mib "$hmin") > $(heap_mib "$heap"))); then hmin=$heap; fi
    # Flags from kafka-run-class.sh, plus limits for a shared 2-core machine.
    jvm_args=(
        "$marker"
        "-Xms$hmin" "-Xmx$heap" -XX:+ExitOnOutOfMemoryError
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
        -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:CICompilerCount=2
        -XX:MaxDirectMemorySize=256M -XX:+PerfDisableSharedMem
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
        "-Dkafka.logs.dir=$home/logs" "$(log_opts server)"
    )
    # shellcheck disable=SC2206 # word-split on purpose
    [[ -n ${KAFKA_JVM_OPTS:-} ]] && jvm_args+=(${KAFKA_JVM_OPTS})
    return 0
}

# ---------------------------------------------------------------------------------------------
# Starting, waiting, stopping.

wait_ready() {
    local deadline=$1
    while true; do
        if ! broker_pid >/dev/null; then
            show_logs
            die "the broker is not running"
        fi
        if started_logged && api_versions_ok "$port"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_logs
            die "the broker did not answer on $bootstrap in time (see $(log_file))"
        fi
        sleep 0.5
    done
}

# Stops the broker. MODE "term": SIGTERM (controlled shutdown), SIGKILL after $stop_timeout s.
# MODE "kill": SIGKILL at once.
stop_broker() {
    local mode=$1 pids p deadline
    pids=$( (broker_pid || true; broker_pids) | sort -u | tr '\n' ' ')
    pids=${pids% }
    if [[ -z $pids ]]; then
        rm -f "$home/pid"
        return 1
    fi
    if [[ $mode == kill ]]; then
        say "killing the broker (pid $pids) with SIGKILL"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    else
        say "stopping the broker (pid $pids)"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
    fi
    deadline=$((SECONDS + stop_timeout))
    for p in $pids; do
        while kill -0 "$p" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                say "the broker (pid $p) did not stop within ${stop_timeout} s: SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
                deadline=$((SECONDS + 10))
            fi
            sleep 0.2
        done
    done
    rm -f "$home/pid"
}

check_version() {
    local old
    [[ -f $home/kafka.version ]] || return 0
    old=$(<"$home/kafka.version")
    [[ $old == "$version" ]] && return 0
    if [[ -f $home/data/meta.properties ]]; then
        die "the data in $home was formatted by Kafka $old, not $version: run '$0 stop --wipe' first (or set KAFKA_VERSION=$old)"
    fi
}

cmd_start() {
    local pid t0=$SECONDS
    [[ $# -eq 0 ]] || usage
    heap_mib "$heap" >/dev/null
    heap_mib "$heap_min" >/dev/null
    ensure_java
    ensure_classpath
    lock_home
    if pid=$(broker_pid); then
        say "the broker already runs (pid $pid)"
        wait_ready $((SECONDS + start_timeout))
        say "ready: Kafka $(cat "$home/kafka.version" 2>/dev/null || echo "$version") on $bootstrap"
        return 0
    fi
    check_version
    tcp_open 127.0.0.1 "$port" && die "127.0.0.1:$port is already in use by another process: set KAFKA_PORT"
    tcp_open 127.0.0.1 "$controller_port" && die "127.0.0.1:$controller_port is already in use by another process: set KAFKA_CONTROLLER_PORT"
    write_config
    format_storage
    echo "$version" >"$home/kafka.version"
    server_jvm_args
    log_size >"$home/log.offset"
    say "starting Kafka $version on $bootstrap (controller 127.0.0.1:$controller_port, heap $heap) in $home"
    # setsid: own session, so the broker outlives this shell and its terminal; 8>&- 9>&-: the
    # broker must not inherit our lock files.
    (cd "$home" && exec setsid nohup "$java_bin" "${jvm_args[@]}" -cp "$lib/*" \
        kafka.Kafka "$home/server.properties" </dev/null >"$home/output.log" 2>&1 8>&- 9>&-) &
    pid=$!
    echo "$pid" >"$home/pid"
    sleep 0.5
    if ! tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$marker"; then
        pid=$(broker_pids | head -n 1)
        if [[ -z $pid ]]; then
            show_logs
            die "the broker exited right after its start"
        fi
        echo "$pid" >"$home/pid"
    fi
    wait_ready $((SECONDS + start_timeout))
    say "ready: Kafka $version on $bootstrap in $((SECONDS - t0)) s (pid $pid)"
}

cmd_wait() {
    local timeout=120
    while [[ $# -gt 0 ]]; do
        case $1 in
            --timeout) timeout=${2:-}; shift 2 || usage ;;
            --timeout=*) timeout=${1#*=}; shift ;;
            *) usage ;;
        esac
    done
    is_uint "$timeout" || die "--timeout must be a number of seconds"
    [[ -f $home/server.properties ]] || die "no broker in $home: run 'start' first"
    wait_ready $((SECONDS + timeout))
    say "ready: Kafka on $bootstrap"
}

cmd_status() {
    local pid
    if [[ ! -f $home/server.properties ]]; then
        echo "no broker configured in $home"
        return 1
    fi
    if ! pid=$(broker_pid); then
        echo "Kafka $(cat "$home/kafka.version" 2>/dev/null || echo '?') in $home: not running"
        return 1
    fi
    if api_versions_ok "$port"; then
        echo "Kafka $(cat "$home/kafka.version" 2>/dev/null || echo '?') in $home: running (pid $pid), $bootstrap answers"
        return 0
    fi
    echo "Kafka $(cat "$home/kafka.version" 2>/dev/null || echo '?') in $home: running (pid $pid), $bootstrap does NOT answer"
    return 1
}

cmd_stop() {
    local wipe=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --wipe) wipe=1; shift ;;
            *) usage ;;
        esac
    done
    [[ -d $home ]] || { say "nothing to stop"; return 0; }
    lock_home
    if ((wipe)); then
        stop_broker kill || true # the data goes anyway: no need for a controlled shutdown
        say "deleting the data in $home"
        rm -rf "${home:?}"/data "${home:?}"/logs
        rm -f "$home"/{server.properties,log4j2.xml,log4j.properties,cluster.id,kafka.version} \
            "$home"/{output.log,format.log,log.offset,pid,.lock}
        rmdir "$home" 2>/dev/null || say "$home still holds files the script did not create: left in place"
    else
        stop_broker term || say "the broker was not running"
    fi
    say "stopped"
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case $cmd in
        start) cmd_start "$@" ;;
        wait) cmd_wait "$@" ;;
        status) cmd_status "$@" ;;
        stop) cmd_stop "$@" ;;
        wipe) cmd_stop --wipe ;;
        kill)
            [[ -d $home ]] || die "no broker in $home"
            lock_home
            stop_broker kill || say "the broker was not running"
            ;;
        topics)
            ensure_java
            ensure_classpath
            if [[ $# -eq 0 ]]; then
                run_tool "$(tool_class topics)" --bootstrap-server "$bootstrap" --list
            else
                run_tool "$(tool_class topics)" --bootstrap-server "$bootstrap" "$@"
            fi
            ;;
        tool)
            [[ $# -ge 1 ]] || usage
            ensure_java
            ensure_classpath
            local class
            class=$(tool_class "$1")
            shift
            run_tool "$class" "$@"
            ;;
        -h | --help | help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
