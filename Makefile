# godist's own tasks. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: lint build test deps dockerd vet fuzz bench chaos run crossbuild

build:
	CGO_ENABLED=0 $(GO) build -o godist ./cmd/godist

# The tools the tests start for real: OpenSSH's sshd and ssh, a static busybox, rsync, tmux
# (the terminal of the --watch tests), chromium (headless: the --timeline page's tests),
# iproute2's ip and tc (internal/netnstest's hosts in network namespaces), docker (the
# client and an engine: the docker= and exec=docker tests, internal/dockertest).
deps:
	@missing=""; \
	command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing="$$missing busybox-static"; \
	command -v rsync >/dev/null 2>&1 || missing="$$missing rsync"; \
	command -v ssh >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	{ command -v ip && command -v tc; } >/dev/null 2>&1 || [ -x /usr/sbin/ip -a -x /usr/sbin/tc ] || missing="$$missing iproute2"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v docker >/dev/null 2>&1 && { command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ]; }; } || missing="$$missing docker.io"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory dockerd
	@# The account whose ssh sessions the chrooted-host tests confine (internal/sshdtest):
	@# no home directory, a key login only (password field '*', not locked).
	@if [ "$$(id -u)" = 0 ]; then \
		id godisttest >/dev/null 2>&1 || { echo "adding the test user godisttest"; useradd -M -d /home/godisttest -s /bin/sh -p '*' godisttest; }; \
		usermod -p '*' godisttest; \
	fi

# A docker engine for the tests: the one that answers `docker info` (DOCKER_HOST and the
# like respected) is used as it is; when none answers and this is root, dockerd is started
# in the background, in a session of its own, logging to DOCKERD_LOG, and waited for (60 s
# at most). No iptables rules and no bridge: the tests' containers run with --network none.
# A dockerd that cannot start because another one is coming up (its pid file) is fine: the
# wait is for whichever answers.
DOCKERD_FLAGS ?= --iptables=false --bridge=none
DOCKERD_LOG ?= /var/log/godist-dockerd.log
dockerd:
	@if docker info >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "no docker engine answers, and only root starts one here: the docker tests will skip (or fail with GODIST_REQUIRE_SSHD set)"; \
		exit 0; \
	fi; \
	echo "starting dockerd $(DOCKERD_FLAGS) (log: $(DOCKERD_LOG))"; \
	setsid dockerd $(DOCKERD_FLAGS) >>$(DOCKERD_LOG) 2>&1 </dev/null & \
	i=0; until docker info >/dev/null 2>&1; do \
		i=$$((i+1)); \
		if [ $$i -gt 300 ]; then echo "dockerd did not answer within 60 s; the end of $(DOCKERD_LOG):"; tail -n 20 $(DOCKERD_LOG); exit 1; fi; \
		sleep 0.2; \
	done; \
	echo "dockerd answers: $$(docker version --format 'engine {{.Server.Version}}')"

# staticcheck on linux and darwin (installed, pinned, through the module proxy).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) install $(STATICCHECK)
	"$$($(GO) env GOPATH)/bin/staticcheck" ./...
	GOOS=darwin "$$($(GO) env GOPATH)/bin/staticcheck" ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -parallel 4 -timeout 20m ./...

# Every platform builds (darwin, freebsd, linux/arm64, windows), and darwin vets clean.
crossbuild:
	GO=$(GO) .ci/crossbuild

# The main job: godist's own tests, distributed over every local CPU.
run: build
	./godist ./...

# Every fuzz target of every package, FUZZTIME each (make fuzz FUZZTIME=60s). The targets are
# found, not listed: `go test -list '^Fuzz'` on each package of `go list ./...`. A failing
# target does not stop the others; make fuzz fails at the end, naming them.
FUZZTIME ?= 20s
fuzz:
	@n=0; failed=""; \
	for pkg in $$($(GO) list ./...); do \
		out=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$out"; failed="$$failed $$pkg(listing)"; continue; }; \
		for target in $$(echo "$$out" | grep '^Fuzz'); do \
			n=$$((n+1)); \
			echo "== $$pkg $$target, $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$pkg || failed="$$failed $$pkg.$$target"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "== $$n fuzz targets, $(FUZZTIME) each; failed:$$failed"; exit 1; fi; \
	echo "== $$n fuzz targets, $(FUZZTIME) each: all passed"

bench:
	bench/local.sh
	bench/startup.sh
	bash bench/channel.sh
	bash bench/rsync.sh
	bash bench/shard.sh
	bash bench/timeline.sh
	bash bench/netns.sh

# Faults injected into godist runs over local workers, real sshds and a godist serve (about
# 20 minutes for 200 runs; figures in bench/CHAOS.md).
CHAOS_RUNS ?= 200
chaos:
	bash bench/chaos.sh $(CHAOS_RUNS)
