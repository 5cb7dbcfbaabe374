#!/usr/bin/env bash
# kafka-local.sh — run a real single-node Apache Kafka 4.x (KRaft, combined
# broker+controller) on 127.0.0.1 for integration tests and CI.
#
# Usage:
#   scripts/kafka-local.sh start    # fetch (cached), format (first time), start, wait, print env
#   scripts/kafka-local.sh stop     # stop the broker started from this state dir
#   scripts/kafka-local.sh status   # running / stopped (exit 0 / 3)
#   scripts/kafka-local.sh env      # print the export lines for the Go tests
#   scripts/kafka-local.sh clean    # stop, then delete the state dir
#   scripts/kafka-local.sh fetch    # only download the jars into the cache
#
#   eval "$(scripts/kafka-local.sh start)"   # start and export KAFKA_* in one go
#
# In a `set -e` CI script prefer the two-step form, so a failed start fails
# the script (the exit status of `eval "$(...)"` is eval's, not start's):
#   kafka_env="$(scripts/kafka-local.sh start)"; eval "$kafka_env"
#
# Progress and errors go to stderr; only the export lines go to stdout.
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka version fetched from Maven Central (default 4.4.0)
#   PORT_RUNNER_CACHE      cache root (default $HOME/.cache/port-runner); jars go
#                          to $PORT_RUNNER_CACHE/kafka-$KAFKA_VERSION/libs
#   KAFKA_LOCAL_DIR        state dir: config, data, TLS files, log, pid
#                          (default $PWD/.kafka-local)
#   KAFKA_PORT             PLAINTEXT listener (default 19092); the ports are fixed, so a
#                          second broker on one machine needs other ones (below 32768)
#   KAFKA_SASL_PORT        SASL_SSL / SCRAM-SHA-512 listener (default 19096)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener (default 19093)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   JAVA_HOME / MVN        java and mvn to use (default: from PATH)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
# Kafka 4.x logs through slf4j 1.7 -> log4j2; its distribution ships
# log4j-slf4j-impl (the slf4j 1.x binding). Keep the log4j version in step
# with the one kafka_2.13 pulls in.
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.25.5}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

CACHE_ROOT="${PORT_RUNNER_CACHE:-${HOME:-/root}/.cache/port-runner}"
KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME_DIR/libs"

STATE="${KAFKA_LOCAL_DIR:-$PWD/.kafka-local}"
[[ "$STATE" == /* ]] || STATE="$PWD/$STATE"
PORT="${KAFKA_PORT:-19092}"
SASL_PORT="${KAFKA_SASL_PORT:-19096}"
CTRL_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
HOST=127.0.0.1
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

SASL_USER=port-runner
SASL_PASS=port-runner-secret
SASL_MECH=SCRAM-SHA-512
STORE_PASS=port-runner-keystore

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
	JAVA="$JAVA_HOME/bin/java"
else
	JAVA="$(command -v java || true)"
fi
MVN="${MVN:-mvn}"

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() {
	printf 'kafka-local: ERROR: %s\n' "$*" >&2
	exit 1
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found in PATH ($2)"; }

# The ports are fixed, so a second broker on this machine (another checkout's run of this
# script: its state dir is its own) meets the first one's. Ports below 32768 stay clear of
# those the kernel hands to outgoing connections (net.ipv4.ip_local_port_range).
die_port_in_use() {
	die "port $HOST:$1 is already in use by another process (another broker, or this script run from another directory): stop it, or choose free ports below 32768 with KAFKA_PORT, KAFKA_SASL_PORT and KAFKA_CONTROLLER_PORT (now $PORT, $SASL_PORT, $CTRL_PORT)"
}

# ---------------------------------------------------------------- fetch

fetch() {
	if [[ -f "$KAFKA_HOME_DIR/.complete" ]] && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
		return 0
	fi
	need "$MVN" "Maven is used to fetch Kafka $KAFKA_VERSION from Maven Central"
	log "fetching Kafka $KAFKA_VERSION and its runtime dependencies with Maven into $LIBS"
	mkdir -p "$KAFKA_HOME_DIR"
	local work="$KAFKA_HOME_DIR/fetch"
	rm -rf "$work" "$LIBS.tmp"
	mkdir -p "$work"
	cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.port-runner</groupId>
  <artifactId>kafka-local-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
	local t0=$SECONDS
	if ! "$MVN" -B -ntp -f "$work/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
		-DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$work/mvn.log" 2>&1; then
		tail -n 40 "$work/mvn.log" >&2 || true
		die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full log: $work/mvn.log)"
	fi
	[[ -f "$LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn (see $work/mvn.log)"
	rm -rf "$LIBS"
	mv "$LIBS.tmp" "$LIBS"
	touch "$KAFKA_HOME_DIR/.complete"
	log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- helpers

pid_of() {
	[[ -f "$STATE/kafka.pid" ]] || return 1
	local pid
	pid="$(cat "$STATE/kafka.pid" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid: it must be our kafka.Kafka.
	if [[ -r "/proc/$pid/cmdline" ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
	fi
	echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

print_env() {
	cat <<EOF
export KAFKA_BROKERS=$HOST:$PORT
export KAFKA_SASL_BROKERS=$HOST:$SASL_PORT
export KAFKA_SASL_USERNAME=$SASL_USER
export KAFKA_SASL_PASSWORD=$SASL_PASS
export KAFKA_SASL_MECHANISM=$SASL_MECH
export KAFKA_CA_FILE=$STATE/ca.pem
EOF
}

# ---------------------------------------------------------------- TLS

make_tls() {
	local d="$STATE/tls"
	if [[ -f "$d/broker.p12" && -f "$STATE/ca.pem" ]]; then
		return 0
	fi
	need openssl "used to make the throwaway CA and broker certificate"
	log "creating a throwaway CA and broker certificate (127.0.0.1, localhost) in $d"
	rm -rf "$d"
	mkdir -p "$d"
	(
		cd "$d"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
			-keyout ca.key -out ca.pem -subj "/CN=port-runner kafka-local CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
		openssl req -newkey rsa:2048 -nodes -sha256 \
			-keyout broker.key -out broker.csr -subj "/CN=localhost" >/dev/null 2>&1
		printf '%s\n' \
			"basicConstraints=CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=IP:127.0.0.1,DNS:localhost" >broker.ext
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-days 3650 -sha256 -extfile broker.ext -out broker.pem >/dev/null 2>&1
		openssl pkcs12 -export -name broker -in broker.pem -inkey broker.key \
			-certfile ca.pem -out broker.p12 -passout "pass:$STORE_PASS" >/dev/null 2>&1
	) || die "openssl failed to create the TLS material in $d"
	cp "$d/ca.pem" "$STATE/ca.pem"
}

# ---------------------------------------------------------------- config

write_config() {
	mkdir -p "$STATE/data" "$STATE/logs"
	cat >"$STATE/server.properties" <<EOF
# Generated by scripts/kafka-local.sh — single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CTRL_PORT
controller.listener.names=CONTROLLER

listeners=PLAINTEXT://$HOST:$PORT,SASL_SSL://$HOST:$SASL_PORT,CONTROLLER://$HOST:$CTRL_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,SASL_SSL://$HOST:$SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT

# SASL_SSL listener: SCRAM-SHA-512 (users are created at format time).
sasl.enabled.mechanisms=$SASL_MECH
listener.name.sasl_ssl.sasl.enabled.mechanisms=$SASL_MECH
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$STATE/tls/broker.p12
ssl.keystore.password=$STORE_PASS
ssl.key.password=$STORE_PASS
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https

log.dirs=$STATE/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# KIP-848 consumer groups: Kafka 4.x enables the classic and consumer
# rebalance protocols by default (group.version feature >= 1 after format).
# group.coordinator.rebalance.protocols is deprecated in 4.4 and setting it
# would disable the others (streams, share), so it is left at its default.
group.consumer.heartbeat.interval.ms=1000
group.consumer.session.timeout.ms=10000
group.consumer.min.session.timeout.ms=5000
group.consumer.min.heartbeat.interval.ms=500

num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=16777216
log.retention.hours=24
log.cleaner.dedupe.buffer.size=8388608
EOF
	cat >"$STATE/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
}

java_base() {
	# shellcheck disable=SC2206
	local heap=($HEAP_OPTS)
	printf '%s\0' "$JAVA" "${heap[@]}" \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
		-XX:TieredStopAtLevel=1 -Xshare:auto \
		-Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$STATE/log4j2.properties" \
		-Dkafka.logs.dir="$STATE/logs" \
		-cp "$LIBS/*"
}

format_storage() {
	if [[ -f "$STATE/data/meta.properties" ]]; then
		return 0
	fi
	local cid cmd=()
	while IFS= read -r -d '' a; do cmd+=("$a"); done < <(java_base)
	cid="$("${cmd[@]}" kafka.tools.StorageTool random-uuid 2>>"$STATE/kafka.log" | tail -n 1)"
	[[ -n "$cid" ]] || die "StorageTool random-uuid failed (see $STATE/kafka.log)"
	log "formatting storage (cluster id $cid, SCRAM user $SASL_USER)"
	if ! "${cmd[@]}" kafka.tools.StorageTool format --ignore-formatted \
		--config "$STATE/server.properties" --cluster-id "$cid" \
		--add-scram "$SASL_MECH=[name=$SASL_USER,password=$SASL_PASS]" \
		>>"$STATE/kafka.log" 2>&1; then
		tail -n 40 "$STATE/kafka.log" >&2 || true
		die "kafka.tools.StorageTool format failed"
	fi
	echo "$cid" >"$STATE/cluster.id"
}

# ---------------------------------------------------------------- commands

cmd_start() {
	if pid_of >/dev/null; then
		log "already running (pid $(pid_of)), state $STATE"
		print_env
		return 0
	fi
	[[ -n "$JAVA" ]] || die "java not found (install a JDK 17+ or set JAVA_HOME)"
	local p
	for p in "$PORT" "$SASL_PORT" "$CTRL_PORT"; do
		if port_open "$p"; then die_port_in_use "$p"; fi
	done
	local t0=$SECONDS
	fetch
	mkdir -p "$STATE"
	STATE="$(cd "$STATE" && pwd)"
	make_tls
	write_config
	: >"$STATE/kafka.log"
	format_storage

	local cmd=()
	while IFS= read -r -d '' a; do cmd+=("$a"); done < <(java_base)
	log "starting Kafka $KAFKA_VERSION (log: $STATE/kafka.log)"
	# setsid: own process group, survives the calling shell; stdin closed.
	setsid "${cmd[@]}" kafka.Kafka "$STATE/server.properties" \
		>>"$STATE/kafka.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$STATE/kafka.pid"

	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$STATE/kafka.pid"
			# Taken between the check above and Kafka's bind (two runs starting at once).
			local taken
			taken="$(grep -oE 'bind to [^ ]*:[0-9]+: Address already in use' "$STATE/kafka.log" | head -n 1 | sed -E 's/.*:([0-9]+): Address.*/\1/' || true)"
			[[ -z "$taken" ]] || die_port_in_use "$taken"
			log "Kafka exited during startup; last log lines:"
			tail -n 60 "$STATE/kafka.log" >&2 || true
			exit 1
		fi
		if grep -q 'Kafka Server started' "$STATE/kafka.log" 2>/dev/null &&
			port_open "$PORT" && port_open "$SASL_PORT"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			log "Kafka did not become ready within ${START_TIMEOUT}s; last log lines:"
			tail -n 60 "$STATE/kafka.log" >&2 || true
			kill "$pid" 2>/dev/null || true
			rm -f "$STATE/kafka.pid"
			exit 1
		fi
		sleep 0.5
	done
	log "ready in $((SECONDS - t0))s (pid $pid): PLAINTEXT $HOST:$PORT, SASL_SSL/$SASL_MECH $HOST:$SASL_PORT"
	print_env
}

cmd_stop() {
	local pid
	if ! pid="$(pid_of)"; then
		log "not running (state $STATE)"
		rm -f "$STATE/kafka.pid"
		return 0
	fi
	log "stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "still running after 30s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 20; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
	fi
	rm -f "$STATE/kafka.pid"
	log "stopped"
}

cmd_status() {
	local pid
	if pid="$(pid_of)"; then
		echo "running (pid $pid) — PLAINTEXT $HOST:$PORT, SASL_SSL $HOST:$SASL_PORT, state $STATE"
		return 0
	fi
	echo "stopped (state $STATE)"
	return 3
}

cmd_clean() {
	cmd_stop
	case "$STATE" in
	"" | / | "$HOME") die "refusing to delete state dir '$STATE'" ;;
	esac
	rm -rf "$STATE"
	log "removed $STATE"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) print_env ;;
clean) cmd_clean ;;
fetch) fetch ;;
*)
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
