GO          ?= go
STATICCHECK  = honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s
ADDR        ?= 127.0.0.1:8080
PKGS_FUZZ   ?= ./runtime ./broker ./broker/client ./broker/smqlua ./scheduler ./lsp ./bench/loadgen

.PHONY: run build test test-deps vet deps lint fmt fmt-check fuzz bench bench-large soak cover clean

## run: serve the embedded examples app on $(ADDR)
run:
	$(GO) run ./cmd/tarpon --addr $(ADDR)

build:
	$(GO) build -o tarpon ./cmd/tarpon

## test: what CI runs (.ci/run): vet, then every package with -race, fuzz seeds
## included; installs npm packages and Chromium first when missing.
test: test-deps vet deps
	$(GO) test -race -count=1 -timeout 30m ./...

test-deps:
	./scripts/test-deps.sh

vet:
	$(GO) vet ./...

## deps: the import direction of the design (runtime, scheduler at the bottom)
deps:
	./scripts/check-imports.sh

lint: vet
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -s -w .

fmt-check:
	@out=$$(gofmt -s -l .); test -z "$$out" || { echo "$$out"; exit 1; }

## fuzz: every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time)
fuzz:
	@for pkg in $(PKGS_FUZZ); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test $$pkg -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) || exit 1; done; done

## bench: the standard side-by-side suite (under 10 minutes on 2 cores); rewrites bench/RESULTS.md
bench: build
	./tarpon bench --peers --report bench/out --results bench/RESULTS.md

## bench-large: as far as this machine allows
bench-large: build
	./tarpon bench --peers --large --report bench/out-large --results bench/RESULTS-large.md

## soak: 10 minutes of mixed load; appends a "Soak" section to bench/RESULTS.md
soak:
	$(GO) run ./cmd/soak --duration 10m --results bench/RESULTS.md

cover:
	$(GO) test -race -covermode=atomic -coverprofile=cover.out ./... && $(GO) tool cover -func=cover.out | tail -1

clean:
	rm -rf tarpon bench/out cover.out
