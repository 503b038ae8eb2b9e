# Load and scale measurements (figures in BENCHMARKS.md); scripts/loadtest.sh does the work.
LOAD_BINS := $(CARGO) build --release -p cadenza -p cadenza-audio -p cadenza-loadtest -p cadenza-session-aggregation -p cadenza-ranking

loadtest: setup ## Recommend latency against `cadenza up` at RATES=500,1000,2000 req/s on TRACKS=100000 synthetic tracks
	$(LOAD_BINS)
	scripts/loadtest.sh grpc

loadtest-scale: setup ## how Recommend latency grows with the catalogue: SIZES="10000 100000 1000000" at SCALE_RATE=1000
	$(LOAD_BINS)
	scripts/loadtest.sh scale

loadtest-kafka: setup kafka-install ## listen-path throughput: LISTENS=100000 onto Kafka, timed through session aggregation
	$(LOAD_BINS)
	scripts/loadtest.sh kafka

soak: setup kafka-install ## fault scenario: LISTENS=100000 through Kafka and UPLOADS=200 through ingest, every service SIGKILLed every 15–25 s, then rebuilt and checked
	$(LOAD_BINS)
	scripts/loadtest.sh soak

.PHONY: loadtest loadtest-scale loadtest-kafka soak
