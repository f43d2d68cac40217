# The README's two commands: "make demo" (or go run ./cmd/lift demo) and "make test".
.PHONY: test demo bench vet

test:
	go test -count=1 -timeout 60m ./...

demo:
	go run ./cmd/lift demo

vet:
	gofmt -l . && go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...
