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
	$(GO) test -race -count=1 -timeout 20m ./...

# The main job: godist's own tests, distributed over every local CPU.
run: build
	./godist ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=30s ./xspec
	$(GO) test -run='^$$' -fuzz=FuzzConverter -fuzztime=30s ./gotest

bench:
	bench/local.sh
