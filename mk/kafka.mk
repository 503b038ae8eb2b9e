# Real Apache Kafka (KRaft, one node on loopback) from Maven Central; see scripts/kafka.sh.
KAFKA_PORT ?= 19092
export KAFKA_PORT

kafka-install: ## resolve the Kafka broker jars from Maven Central into $CADENZA_CACHE/kafka (once)
	@scripts/kafka.sh install

kafka-up: kafka-install ## start a single-node Kafka broker on 127.0.0.1:$KAFKA_PORT (19092) and wait until it is ready
	@scripts/kafka.sh start
	@scripts/kafka.sh wait

kafka-down: ## stop the broker started by kafka-up (its data stays under $CADENZA_CACHE/kafka)
	@scripts/kafka.sh stop

kafka-status: ## is the kafka-up broker running?
	@scripts/kafka.sh status

test-bus: ## the event-bus contract tests: in-process log always, Kafka on a broker of their own
	$(CARGO) test -p cadenza-bus

.PHONY: kafka-install kafka-up kafka-down kafka-status test-bus
