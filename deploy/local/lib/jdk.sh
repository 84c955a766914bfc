# shellcheck shell=bash
# shellcheck disable=SC2154  # the variables below are set by the sourcing script
# Shared by cassandra.sh and kafka.sh: apt installs, a JDK 17, and Maven. The sourcing script
# defines say and die, and sets before use:
#   jdk_override   a JDK the user named (e.g. $CASSANDRA_JAVA_HOME), or empty
#   jdk_override_name  that variable's name, for messages
#   jdk_why        why Java 17 (appended to messages)
#   mvn_why        what Maven is needed for (appended to messages)

apt_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$1 is missing: install it with 'sudo apt-get install openjdk-17-jdk-headless maven'"
    fi
    say "$1 is missing: installing $2 with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
}

is_java17() { [[ -x $1/bin/java ]] && "$1/bin/java" -version 2>&1 | grep -q 'version "17[."]'; }

# Prints the home of a JDK 17: the one named by the user, else Debian's, else any found.
find_java() {
    local arch candidates=() c
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    if [[ -n ${jdk_override:-} ]]; then
        is_java17 "$jdk_override" || return 1
        echo "$jdk_override"
        return 0
    fi
    candidates+=("/usr/lib/jvm/java-17-openjdk-$arch")
    [[ -n ${JAVA_HOME:-} ]] && candidates+=("$JAVA_HOME")
    for c in /usr/lib/jvm/*17*; do candidates+=("$c"); done
    for c in "${candidates[@]}"; do
        if is_java17 "$c"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# Sets java_bin, installing Debian's JDK 17 when none is found (as root).
ensure_java() {
    [[ -n ${java_bin:-} ]] && return 0
    local jh
    if [[ -n ${jdk_override:-} ]] && ! is_java17 "$jdk_override"; then
        die "$jdk_override_name=$jdk_override is not a JDK 17${jdk_why:+ ($jdk_why)}"
    fi
    if ! jh=$(find_java); then
        apt_install "a JDK 17${jdk_why:+ ($jdk_why)}" openjdk-17-jdk-headless
        jh=$(find_java) || die "no JDK 17 found after installing openjdk-17-jdk-headless"
    fi
    java_bin=$jh/bin/java
}

ensure_mvn() {
    command -v mvn >/dev/null 2>&1 || apt_install "Maven (mvn, $mvn_why)" maven
    command -v mvn >/dev/null 2>&1 || die "mvn not found after installing maven"
}
