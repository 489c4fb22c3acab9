# godist's own tasks. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: build test deps vet fuzz bench run

build:
	CGO_ENABLED=0 $(GO) build -o godist ./cmd/godist

# The tools the tests start for real: OpenSSH's sshd, a static busybox, rsync.
deps:
	@missing=""; \
	command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing="$$missing busybox-static"; \
	command -v rsync >/dev/null 2>&1 || missing="$$missing rsync"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -parallel 4 -timeout 20m ./...

# The main job: godist's own tests, distributed over every local CPU.
run: build
	./godist ./...

# Every fuzz target, FUZZTIME each (make fuzz FUZZTIME=60s).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzFrameDecoder$$' -fuzztime=$(FUZZTIME) ./channel
	$(GO) test -run='^$$' -fuzz='^FuzzSession$$' -fuzztime=$(FUZZTIME) ./channel
	$(GO) test -run='^$$' -fuzz='^FuzzValueDecoder$$' -fuzztime=$(FUZZTIME) ./channel
	$(GO) test -run='^$$' -fuzz='^FuzzConverter$$' -fuzztime=$(FUZZTIME) ./gotest
	$(GO) test -run='^$$' -fuzz='^FuzzGitHubAnnotation$$' -fuzztime=$(FUZZTIME) ./report
	$(GO) test -run='^$$' -fuzz='^FuzzGitHubOutput$$' -fuzztime=$(FUZZTIME) ./report
	$(GO) test -run='^$$' -fuzz='^FuzzCheckPath$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeHello$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeManifest$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeNeeds$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecords$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzDelta$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzFilter$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzManifestWalk$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzOpenMsg$$' -fuzztime=$(FUZZTIME) ./rsync
	$(GO) test -run='^$$' -fuzz='^FuzzParseShard$$' -fuzztime=$(FUZZTIME) ./scheduler
	$(GO) test -run='^$$' -fuzz='^FuzzParseAuthorizedKeys$$' -fuzztime=$(FUZZTIME) ./serve
	$(GO) test -run='^$$' -fuzz='^FuzzParseListenAddr$$' -fuzztime=$(FUZZTIME) ./serve
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./xspec

bench:
	bench/local.sh
	bench/startup.sh
	bash bench/channel.sh
	bash bench/rsync.sh
	bash bench/shard.sh
