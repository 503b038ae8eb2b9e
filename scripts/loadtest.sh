#!/usr/bin/env bash
# Load and scale measurements against real processes on this machine (see BENCHMARKS.md).
#
#   scripts/loadtest.sh grpc    Recommend latency against `cadenza up` on a synthetic catalogue
#                               of $TRACKS tracks at each of $RATES requests/s
#   scripts/loadtest.sh scale   the same at one rate ($SCALE_RATE) for each size in $SIZES
#   scripts/loadtest.sh kafka   listen-path throughput: Kafka → session aggregation, while the
#                               listens are published and then on a backlog of $BACKLOG
#   scripts/loadtest.sh soak    the same, with uploads through ingest alongside, while every
#                               service is SIGKILLed every 15–25 s and restarted; then
#                               `cadenza rebuild --check`, every listener's state and every
#                               upload checked: nothing lost or doubled
#
# Catalogues are built once into $CADENZA_CACHE/loadtest/<tracks> and reused. Binaries come
# from the release build the make targets run first. Figures are appended as JSON lines to
# $LOAD_OUT (default $CADENZA_CACHE/loadtest/results.jsonl) as well as printed.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CADENZA_CACHE:=$HOME/.cache/cadenza}"
: "${CARGO_TARGET_DIR:=$CADENZA_CACHE/target}"
BIN="$CARGO_TARGET_DIR/release"
TRACKS=${TRACKS:-100000}
RATES=${RATES:-500,1000,2000}
DURATION=${DURATION:-20}
USERS=${USERS:-1000}
SIZES=${SIZES:-10000 100000 1000000}
SCALE_RATE=${SCALE_RATE:-1000}
STRATEGY=${STRATEGY:-knn}
# Extra flags for `cadenza up` in grpc/scale (e.g. UP_ARGS="--search-ef 32").
UP_ARGS=${UP_ARGS:-}
# Vector compression the catalogues are built with (none or int8); an int8 catalogue lives
# beside the plain one, in catalogue-<tracks>-int8.
QUANTIZATION=${QUANTIZATION:-int8}
LOAD_OUT=${LOAD_OUT:-$CADENZA_CACHE/loadtest/results.jsonl}
PORT=${LOAD_PORT:-50561}
mkdir -p "$CADENZA_CACHE/loadtest"

pids=()
soak_kafka=
soak_dir=
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n "$soak_kafka" ]]; then
    scripts/kafka.sh stop || true
    rm -rf "$KAFKA_DATA"
    soak_kafka=
  fi
  if [[ -n "${soak_dir:-}" && -d "$soak_dir" ]]; then
    echo "soak failed: each service's log is kept in $soak_dir" >&2
  fi
}
trap cleanup EXIT

wait_port() { # host:port, seconds
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "nothing listens on $1 after $2 s" >&2; exit 1; }
    sleep 0.2
  done
}

catalogue() { # tracks → data dir with the catalogue in it
  local dir="$CADENZA_CACHE/loadtest/catalogue-$1"
  [[ "$QUANTIZATION" == none ]] || dir="$dir-$QUANTIZATION"
  if [[ ! -f "$dir/.complete" ]]; then
    rm -rf "$dir"
    echo "building a synthetic catalogue of $1 tracks in $dir (once)" >&2
    "$BIN/cadenza-load" catalogue --tracks "$1" --data-dir "$dir" \
      --quantization "$QUANTIZATION" >&2
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# Serve catalogue $1 with `cadenza up`, give $USERS listeners a history, then measure.
measure() { # tracks rates label
  local dir; dir=$(catalogue "$1")
  "$BIN/cadenza" --log warn up --data-dir "$dir" --grpc-addr "127.0.0.1:$PORT" \
    --metrics-addr off --max-concurrent-requests 4096 ${UP_ARGS:-} &
  local up=$!
  pids+=("$up")
  wait_port "127.0.0.1:$PORT" 120
  "$BIN/cadenza-load" users --server "http://127.0.0.1:$PORT" --users "$USERS" --tracks "$1"
  # The server's CPU time over the measurement (user + system, from /proc), per request sent
  # (each rate runs a 3 s warm-up, then $DURATION s): a figure that does not swing with the
  # tail as latency does near saturation.
  local ticks0; ticks0=$(awk '{print $14 + $15}' "/proc/$up/stat")
  "$BIN/cadenza-load" grpc --server "http://127.0.0.1:$PORT" --users "$USERS" \
    --rates "$2" --duration "$DURATION" --strategy "$STRATEGY" --label "$3" --json "$LOAD_OUT"
  local ticks1; ticks1=$(awk '{print $14 + $15}' "/proc/$up/stat")
  awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" -v rates="$2" -v d="$DURATION" \
    'BEGIN { n = split(rates, r, ","); sent = 0; for (i = 1; i <= n; i++) sent += r[i] * (d + 3);
             printf "server CPU: %.1f s for %d requests, %.0f µs per request\n", t / hz, sent, 1e6 * t / hz / sent }'
  kill -TERM "$up"
  wait "$up"
  pids=()
}

git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "$(date -u +%FT%TZ) $git_rev, $(nproc) cores: scripts/loadtest.sh $*" | tee -a "${LOAD_OUT%.jsonl}.log"
case "${1:-grpc}" in
  grpc)
    measure "$TRACKS" "$RATES" "$TRACKS tracks @ $git_rev"
    ;;
  scale)
    for n in $SIZES; do
      echo "== $n tracks"
      measure "$n" "$SCALE_RATE" "$n tracks @ $git_rev"
    done
    ;;
  kafka)
    # A broker of the project's own (scripts/kafka.sh), session aggregation as its own process
    # with its own qdrant-edge index, filled from the track.embedded topic.
    scripts/kafka.sh start
    scripts/kafka.sh wait
    brokers="127.0.0.1:${KAFKA_PORT:-19092}"
    sa_dir=$(mktemp -d "$CADENZA_CACHE/loadtest/sa.XXXXXX")
    # A session timeout longer than the pause below, so the paused member keeps its partitions.
    "$BIN/cadenza-session-aggregation" --kafka-brokers "$brokers" --data-dir "$sa_dir" \
      --grpc-addr 127.0.0.1:50571 --metrics-addr 127.0.0.1:9571 --instance-id load \
      --topic-partitions "${PARTITIONS:-6}" --log warn \
      --kafka-properties session.timeout.ms=120000 &
    sa=$!
    pids+=("$sa")
    wait_port 127.0.0.1:50571 60
    "$BIN/cadenza-load" catalogue --kafka "$brokers" --tracks "${KAFKA_TRACKS:-10000}" \
      --partitions "${PARTITIONS:-6}"
    "$BIN/cadenza-load" listens --kafka "$brokers" --tracks "${KAFKA_TRACKS:-10000}" \
      --count "${LISTENS:-100000}" --users "${LISTEN_USERS:-5000}" \
      --wait-group cadenza-session-aggregation-tracks-load --seed "$RANDOM"
    # Its own speed, without the generator sharing the cores: a backlog published while
    # session aggregation is paused (SIGSTOP), then drained.
    kill -STOP "$sa"
    "$BIN/cadenza-load" listens --kafka "$brokers" --tracks "${KAFKA_TRACKS:-10000}" \
      --count "${BACKLOG:-300000}" --users "${LISTEN_USERS:-5000}" --seed "$RANDOM" --publish-only
    kill -CONT "$sa"
    "$BIN/cadenza-load" listens --kafka "$brokers" --drain-only
    cleanup
    pids=()
    rm -rf "$sa_dir"
    [[ "${KEEP_KAFKA:-}" == 1 ]] || scripts/kafka.sh stop
    ;;
  soak)
    # Fault scenario: $LISTENS listens through Kafka, published at $SOAK_RATE/s (1,500: about a
    # minute for 100k, so several kills land mid-stream), and $UPLOADS synthetic clips uploaded
    # through ingest at $UPLOAD_RATE/s (each retried until acknowledged), while every service
    # is killed with SIGKILL and restarted: session aggregation every
    # $KILL_EVERY_MIN..$KILL_EVERY_MAX s (15..25: longer than the 10 s group session timeout,
    # or a restarted member never gets its partitions back), then ranking (its own index,
    # materialised from the user-state and track topics), ingest and feature extraction a few
    # seconds apart. Then every user state is rebuilt from the listen topic and checked against
    # what session aggregation announced, every listener's state as ranking serves it against
    # the listens published, and every acknowledged upload against what ranking serves (0 lost,
    # 0 double-counted); the time from the last restart to a caught-up group is printed.
    # A broker of its own on fresh data: earlier runs' topics and offsets must not count.
    export KAFKA_PORT=${SOAK_KAFKA_PORT:-19292}
    KAFKA_DATA=$(mktemp -d "$CADENZA_CACHE/loadtest/kafka.XXXXXX")
    export KAFKA_DATA
    soak_kafka=1
    # Everything of this run under one directory: removed when it passes, kept (with each
    # service's log) when it fails.
    soak_dir=$(mktemp -d "$CADENZA_CACHE/loadtest/soak.XXXXXX")
    scripts/kafka.sh start
    scripts/kafka.sh wait
    brokers="127.0.0.1:${KAFKA_PORT:-19092}"
    sa_dir=$soak_dir/sa; mkdir -p "$sa_dir"
    start_sa() {
      "$BIN/cadenza-session-aggregation" --kafka-brokers "$brokers" --data-dir "$sa_dir" \
        --grpc-addr 127.0.0.1:50571 --metrics-addr 127.0.0.1:9572 --instance-id soak \
        --topic-partitions "${PARTITIONS:-6}" --log warn >>"$sa_dir/sa.log" 2>&1 &
      sa=$!
      pids+=("$sa")
    }
    rk_dir=$soak_dir/ranking; mkdir -p "$rk_dir"
    start_ranking() {
      "$BIN/cadenza-ranking" --kafka-brokers "$brokers" --data-dir "$rk_dir" \
        --grpc-addr 127.0.0.1:50573 --metrics-addr 127.0.0.1:9573 --instance-id soak \
        --topic-partitions "${PARTITIONS:-6}" --log warn >>"$rk_dir/ranking.log" 2>&1 &
      rk=$!
      pids+=("$rk")
    }
    blob_dir=$soak_dir/blobs; mkdir -p "$blob_dir"
    in_dir=$soak_dir/ingest; mkdir -p "$in_dir"
    start_ingest() {
      "$BIN/cadenza-ingest" --kafka-brokers "$brokers" --data-dir "$in_dir" \
        --blob-dir "$blob_dir" --grpc-addr 127.0.0.1:50574 --metrics-addr 127.0.0.1:9574 \
        --instance-id soak --topic-partitions "${PARTITIONS:-6}" --log warn \
        >>"$in_dir/ingest.log" 2>&1 &
      in=$!
      pids+=("$in")
    }
    fe_dir=$soak_dir/fe; mkdir -p "$fe_dir"
    start_fe() {
      "$BIN/cadenza-feature-extraction" --kafka-brokers "$brokers" --data-dir "$fe_dir" \
        --blob-dir "$blob_dir" --grpc-addr 127.0.0.1:50575 --metrics-addr 127.0.0.1:9575 \
        --threads 1 --topic-partitions "${PARTITIONS:-6}" --log warn \
        >>"$fe_dir/fe.log" 2>&1 &
      fe=$!
      pids+=("$fe")
    }
    start_sa
    start_ranking
    start_ingest
    start_fe
    for port in 50571 50573 50574 50575; do wait_port "127.0.0.1:$port" 60; done
    "$BIN/cadenza-load" catalogue --kafka "$brokers" --tracks "${KAFKA_TRACKS:-10000}" \
      --partitions "${PARTITIONS:-6}"
    "$BIN/cadenza-load" listens --kafka "$brokers" --tracks "${KAFKA_TRACKS:-10000}" \
      --count "${LISTENS:-100000}" --users "${LISTEN_USERS:-5000}" --rate "${SOAK_RATE:-1500}" \
      --wait-group cadenza-session-aggregation-tracks-soak --seed "$RANDOM" &
    load=$!
    "$BIN/cadenza-load" uploads --server http://127.0.0.1:50574 \
      --catalog http://127.0.0.1:50573 --count "${UPLOADS:-200}" --rate "${UPLOAD_RATE:-3}" \
      --seed "$RANDOM" --timeout 240 &
    uploads=$!
    kills=0
    last_restart=$SECONDS
    while kill -0 "$load" 2>/dev/null; do
      sleep $((${KILL_EVERY_MIN:-15} + RANDOM % (${KILL_EVERY_MAX:-25} - ${KILL_EVERY_MIN:-15} + 1)))
      kill -0 "$load" 2>/dev/null || break
      kill -KILL "$sa"; wait "$sa" 2>/dev/null || true
      kills=$((kills + 1))
      echo "SIGKILL #$kills to session aggregation at ${SECONDS}s; restarting"
      start_sa
      sleep $((2 + RANDOM % 4))
      kill -KILL "$rk"; wait "$rk" 2>/dev/null || true
      echo "SIGKILL #$kills to ranking at ${SECONDS}s; restarting"
      start_ranking
      sleep $((1 + RANDOM % 3))
      kill -KILL "$in"; wait "$in" 2>/dev/null || true
      echo "SIGKILL #$kills to ingest at ${SECONDS}s; restarting"
      start_ingest
      sleep $((1 + RANDOM % 3))
      kill -KILL "$fe"; wait "$fe" 2>/dev/null || true
      echo "SIGKILL #$kills to feature extraction at ${SECONDS}s; restarting"
      start_fe
      last_restart=$SECONDS
    done
    wait "$load"
    echo "caught up $((SECONDS - last_restart)) s after the last restart ($kills SIGKILLs)"
    check_dir=$soak_dir/rebuild; mkdir -p "$check_dir"
    "$BIN/cadenza" --log warn rebuild --kafka-brokers "$brokers" --data-dir "$check_dir" --check \
      | tee "$check_dir/report.txt"
    grep -q "  identical" "$check_dir/report.txt"
    "$BIN/cadenza-load" states --server http://127.0.0.1:50573 --count "${LISTENS:-100000}" \
      --users "${LISTEN_USERS:-5000}"
    wait "$uploads"
    kill -TERM "$sa" "$rk" "$in" "$fe"; wait "$sa" "$rk" "$in" "$fe" 2>/dev/null || true
    rm -rf "$soak_dir"
    ;;
  *)
    echo "usage: $0 grpc|scale|kafka|soak" >&2
    exit 2
    ;;
esac
