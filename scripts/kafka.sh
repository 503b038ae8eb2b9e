#!/usr/bin/env bash
# Real Apache Kafka for development and tests, from Maven Central (no distribution tarball).
#
#   scripts/kafka.sh install   resolve the broker jars into $CADENZA_CACHE/kafka/<version>/libs
#   scripts/kafka.sh start     format (first time) and start one KRaft broker+controller on 127.0.0.1
#   scripts/kafka.sh wait      poll until the broker serves requests (deadline KAFKA_WAIT_SECS)
#   scripts/kafka.sh stop      SIGTERM, then SIGKILL after KAFKA_STOP_SECS
#   scripts/kafka.sh kill      SIGKILL at once (fault tests)
#   scripts/kafka.sh status    "running pid=… port=…" (exit 0) or "not running" (exit 3)
#
# Environment (all optional):
#   CADENZA_CACHE          cache root                       (default ~/.cache/cadenza)
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13       (default 4.4.0)
#   KAFKA_PORT             client listener port              (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port             (default KAFKA_PORT+1)
#   KAFKA_DATA             config, logs, pid and data        (default $CADENZA_CACHE/kafka/run-$KAFKA_PORT)
#   KAFKA_HEAP_OPTS        JVM heap                          (default -Xmx512m -Xms256m)
#   KAFKA_WAIT_SECS        readiness deadline                (default 60)
#   KAFKA_STOP_SECS        graceful stop deadline            (default 30)
#   KAFKA_WATCH_PID        if set, a watchdog stops the broker once that process is gone
#                          (test harnesses whose statics are never dropped)
#
# Nothing is written outside $CADENZA_CACHE and $KAFKA_DATA: Maven uses a repository under the
# cache, and the JVM gets -XX:-UsePerfData and a private java.io.tmpdir.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="$HERE/kafka"

CADENZA_CACHE="${CADENZA_CACHE:-$HOME/.cache/cadenza}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_DATA="${KAFKA_DATA:-$CADENZA_CACHE/kafka/run-$KAFKA_PORT}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_WAIT_SECS="${KAFKA_WAIT_SECS:-60}"
KAFKA_STOP_SECS="${KAFKA_STOP_SECS:-30}"

KAFKA_HOME="$CADENZA_CACHE/kafka/$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
M2="$CADENZA_CACHE/kafka/m2"
PID_FILE="$KAFKA_DATA/kafka.pid"
LOG_DIR="$KAFKA_DATA/logs"
SERVER_LOG="$LOG_DIR/server.log"

say() { echo "kafka.sh: $*" >&2; }
die() { say "$*"; exit 1; }

need_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found: Kafka $KAFKA_VERSION needs a JDK 17+ on PATH (Debian: apt-get install openjdk-17-jre-headless)"
}

cmd_install() {
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: installing Kafka's jars from Maven Central needs Maven (Debian: apt-get install maven)"
  need_java
  mkdir -p "$CADENZA_CACHE/kafka"
  # Several test binaries may install at once: one resolves, the others wait for it.
  exec 9>"$CADENZA_CACHE/kafka/install.lock"
  flock 9
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  say "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $LIBS"
  local tmp="$LIBS.tmp.$$"
  rm -rf "$tmp"
  mvn -q -B -Dstyle.color=never -f "$TEMPLATES/pom.xml" \
    -Dmaven.repo.local="$M2" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 ||
    { rm -rf "$tmp"; die "Maven could not resolve Kafka $KAFKA_VERSION (network? see output above)"; }
  [[ -n "$(ls "$tmp"/kafka_2.13-*.jar 2>/dev/null)" ]] || die "no kafka_2.13 jar was resolved into $tmp"
  rm -rf "$LIBS"
  touch "$tmp/.complete"
  mv "$tmp" "$LIBS"
  say "installed Kafka $KAFKA_VERSION ($(ls "$LIBS"/*.jar | wc -l) jars)"
}

# The pid in the pid file, if that process is still alive.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

java_opts() {
  # shellcheck disable=SC2206
  JAVA_OPTS=($KAFKA_HEAP_OPTS -XX:-UsePerfData -Djava.awt.headless=true
    -Djava.io.tmpdir="$KAFKA_DATA/tmp"
    -Dlog4j2.configurationFile="$KAFKA_DATA/log4j2.xml"
    -Dkafka.logs.dir="$LOG_DIR"
    -cp "$LIBS/*")
}

cmd_start() {
  need_java
  [[ -f "$LIBS/.complete" ]] || die "Kafka $KAFKA_VERSION is not installed: run scripts/kafka.sh install (or make kafka-up)"
  if pid="$(live_pid)"; then
    say "already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  mkdir -p "$KAFKA_DATA/data" "$KAFKA_DATA/tmp" "$LOG_DIR"
  sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@LOG_DIRS@|$KAFKA_DATA/data|g" "$TEMPLATES/server.properties" >"$KAFKA_DATA/server.properties"
  cp "$TEMPLATES/log4j2.xml" "$KAFKA_DATA/log4j2.xml"
  # `wait` looks for this run's "started" line, so the previous run's log moves aside.
  if [[ -f "$SERVER_LOG" ]]; then mv -f "$SERVER_LOG" "$SERVER_LOG.prev"; fi
  java_opts
  if [[ ! -f "$KAFKA_DATA/data/meta.properties" ]]; then
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
    local cluster_id
    cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    java "${JAVA_OPTS[@]}" kafka.tools.StorageTool format --standalone \
      --config "$KAFKA_DATA/server.properties" --cluster-id "$cluster_id" \
      >>"$LOG_DIR/format.log" 2>&1 ||
      die "formatting $KAFKA_DATA/data failed; see $LOG_DIR/format.log"
  fi
  # setsid: the broker must not receive the terminal's ^C meant for the caller.
  setsid java "${JAVA_OPTS[@]}" kafka.Kafka "$KAFKA_DATA/server.properties" \
    >>"$LOG_DIR/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PID_FILE"
  if [[ -n "${KAFKA_WATCH_PID:-}" ]]; then
    start_watchdog "$KAFKA_WATCH_PID"
  fi
  say "started pid $pid on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT); logs in $LOG_DIR"
}

# Stops the broker once the watched process (a test binary) has exited, however it exited.
# One watchdog per data dir: it outlives broker restarts (fault tests kill and restart the
# broker) and acts only when the watched process is gone.
start_watchdog() {
  local watched="$1" wd_pid_file="$KAFKA_DATA/watchdog.pid"
  if [[ -f "$wd_pid_file" ]] && kill -0 "$(cat "$wd_pid_file")" 2>/dev/null; then
    return 0
  fi
  (
    trap '' HUP INT
    while kill -0 "$watched" 2>/dev/null; do sleep 1; done
    KAFKA_STOP_SECS=10 cmd_stop >/dev/null 2>&1 || true
    # Temporary brokers (the test kit's) ask for their data dir to go with them.
    if [[ -f "$KAFKA_DATA/.remove-on-exit" ]]; then rm -rf "$KAFKA_DATA"; fi
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$wd_pid_file"
  disown || true
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_wait() {
  local deadline=$((SECONDS + KAFKA_WAIT_SECS))
  while ((SECONDS < deadline)); do
    if ! live_pid >/dev/null; then
      say "broker exited during start-up; last lines of $LOG_DIR:"
      tail -n 20 "$SERVER_LOG" "$LOG_DIR/stdout.log" >&2 2>/dev/null || true
      exit 1
    fi
    # The port opens a moment before the broker has registered with its controller; the
    # "started" line is the broker's own statement that it serves requests.
    if port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$SERVER_LOG" 2>/dev/null; then
      say "ready on 127.0.0.1:$KAFKA_PORT"
      return 0
    fi
    sleep 0.2
  done
  say "not ready after ${KAFKA_WAIT_SECS}s; see $SERVER_LOG"
  exit 1
}

cmd_stop() {
  local pid
  if ! pid="$(live_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_SECS))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid ignored SIGTERM for ${KAFKA_STOP_SECS}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_kill() {
  local pid
  if pid="$(live_pid)"; then
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$PID_FILE"
}

cmd_status() {
  local pid
  if pid="$(live_pid)"; then
    echo "running pid=$pid port=$KAFKA_PORT controller=$KAFKA_CONTROLLER_PORT data=$KAFKA_DATA logs=$LOG_DIR"
  else
    echo "not running (port $KAFKA_PORT, data $KAFKA_DATA)"
    exit 3
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  wait) cmd_wait ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
