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
# FUZZTIME through .ci/fuzz (which reruns once a run that failed only by Go's
# fuzz-deadline race, go.dev/issue/75804). -fuzzminimizetime keeps a
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
	FUZZTIME=$(FUZZTIME) FUZZFLAGS="$(FUZZFLAGS)" .ci/fuzz $(FUZZ_TARGETS)
