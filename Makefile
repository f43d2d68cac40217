# The README's two commands: "make demo" (or go run ./cmd/lift demo) and "make test".
.PHONY: test demo bench vet fuzz

test:
	go test -count=1 -timeout 60m ./...

demo:
	go run ./cmd/lift demo

vet:
	gofmt -l . && go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Every fuzz target, one package:target per entry; "make fuzz" runs each for
# FUZZTIME (go test runs one fuzz target at a time). -fuzzminimizetime keeps a
# worker from stalling on minimizing a new input; failures are saved under the
# package's testdata/fuzz and rerun by "make test".
FUZZTIME ?= 20s
FUZZFLAGS ?= -fuzzminimizetime 2s -parallel 2
FUZZ_TARGETS = \
	./api:FuzzExposuresJSON ./api:FuzzAssignJSON ./api:FuzzNDJSONEvents ./api:FuzzRefuseNUL \
	./api:FuzzBodies ./api:FuzzQueryParams ./api:FuzzDecodeExposuresFast ./api:FuzzDecodeAssignFast \
	./store:FuzzIngestCSV ./store:FuzzIngestNDJSON ./store:FuzzIngestParquet \
	./experiment:FuzzIdentProblem ./experiment:FuzzParseDuration ./experiment:FuzzMetricDefinition \
	./experiment:FuzzExperimentDefinition ./jobs:FuzzSchedule ./scorer:FuzzSafetensors ./scorer:FuzzLoad \
	./cmd/lift:FuzzReadTable ./analysis:FuzzAnalyze ./assign:FuzzHash

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg; \
	done
