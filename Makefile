# governord -- build, run and test.
#
#   make            build build/governord, and the library: build/libgovernor.a,
#                   build/libgovernor.so.0 (+ .so) and build/governor.pc
#   make install    governord, the library, governor.h and governor.pc under
#                   $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)
#   make run        install missing build dependencies (as root), build, run
#                   on 0.0.0.0:8080 with policies/local.ini (limit = 1Gi)
#   make test       everything CI runs: unit tests (plain, ASan+UBSan, TSan),
#                   integration tests against the real binary, the real
#                   kernel test on this machine's memory cgroup, and the
#                   systemd unit, offline and under systemd in a VM
#   make unit       unit tests only (cmocka)
#   make test-lib   the installed library: examples/lru-cache built with
#                   pkg-config against `make install DESTDIR=...`, run under
#                   a real memory limit (as root)
#   make test-chart      the Helm chart: rendered, validated, run in the loop
#   make test-rules      the chart's alerts under `promtool test rules`, its
#                        dashboard's expressions parsed and checked
#   make test-container  the Dockerfile built and run with podman
#   make image      build the image localhost/governord:dev (podman, or docker
#                   where present) and print its size
#   make test-vm    the cgroup v2 proof: boots Debian's cloud kernel under
#                   QEMU and runs governord on its real v2 memory controller
#   make demo       the seed's scenario on this machine's memory cgroup, with
#                   and without the governor, and the seed's Flask app under
#                   governord -- python3 (as root; DEMO_APP_SECONDS=60)
#   make test-browser  the live page in headless Chromium against the daemon
#   make screenshot    run test-browser and copy its screenshot to docs/
#   make clean
#
# Variants build into their own directories: build/ (release), build/asan,
# build/tsan.  Every library comes from pkg-config.

PKGS      := libmicrohttpd libsystemd jansson inih hiredis nettle
TEST_PKGS := cmocka

BUILD     ?= build
CC        ?= cc
SAN       ?=
OPT       ?= -O2
PYTHON    ?= /usr/bin/python3
# `make V=1` shows the full compiler command lines
Q         := $(if $(V),,@)
# shared/ beside the project checkout (chart-render, k8s-validate); CI lays a
# copy there.  Set SHARED_DIR to use another one.
SHARED_DIR ?= $(abspath $(CURDIR)/../shared)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS_PKG := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS_PKG   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# -Wno-format-truncation: messages are built with snprintf into bounded
# buffers on purpose; where truncation would matter (paths) the return value
# is checked.
WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS   := -std=gnu11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(HARDEN) -pthread -MMD -MP \
            -Igovernor -Iapp $(PKG_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS  := -pie -Wl,-z,relro,-z,now -Wl,--as-needed -pthread $(SAN) $(EXTRA_LDFLAGS)
LIBS     := $(PKG_LIBS) -lm

LIB_SRC  := $(wildcard governor/*.c)
APP_SRC  := app/collector.c app/http.c app/routes.c app/render.c app/embedded.c app/metrics.c
APP_SRC  += app/counter.c
APP_SRC  += app/supervise.c
APP_SRC  += app/duration.c
APP_SRC  += app/common.c
APP_SRC  += app/trimproto.c app/trimsock.c
MAIN_SRC := app/main.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

# the library's objects serve the static archive and the shared library
# alike: position-independent, and only what governor.h marks GOV_EXPORT is
# visible outside (the version script then exports only gov_*); built apart
# from the others (pic/) because their flags differ
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(MAIN_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: install
.PHONY: all run deps deps-test test unit unit-run test-asan test-tsan integration integration-asan \
        test-kernel test-lib test-chart test-rules test-container test-systemd test-vm test-browser test-fuzz \
        test-valgrind lint demo screenshot clean image

all: $(BUILD)/governord $(BUILD)/libgovernor.a $(BUILD)/libgovernor.so.0 $(BUILD)/libgovernor.so \
     $(BUILD)/governor.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# the default policy and the live page are compiled in with .incbin (app/embedded.c)
PAGE_FILES := app/page/index.html app/page/page.js app/page/page.css
EMBED_DEFS := -DDEFAULT_POLICY_FILE='"$(CURDIR)/policies/default.ini"' \
    -DPAGE_HTML_FILE='"$(CURDIR)/app/page/index.html"' \
    -DPAGE_JS_FILE='"$(CURDIR)/app/page/page.js"' \
    -DPAGE_CSS_FILE='"$(CURDIR)/app/page/page.css"'
$(BUILD)/app/embedded.o: CFLAGS += $(EMBED_DEFS)
$(BUILD)/app/embedded.o: policies/default.ini $(PAGE_FILES)

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/libgovernor.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

# the C trim-protocol client's test program (tests/integration/test_c_client.py)
$(BUILD)/clients/c_client_driver: tests/clients/c_client_driver.c $(BUILD)/libgovernor.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgovernor.a $(LIBS)

# bench/protocol.sh's C clients and echo reference (not installed)
$(BUILD)/bench/proto_client: bench/proto_client.c $(BUILD)/libgovernor.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgovernor.a $(LIBS)

# ---- the shared library: soname libgovernor.so.0, only gov_* exported -----
# (hidden visibility and GOV_EXPORT in governor.h decide what is public; the
# version script makes sure nothing else leaks).  governord itself links the
# static archive: its image is FROM scratch.
LIB_PKGS    := libsystemd jansson inih nettle
LIB_LIBS    := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null) -lm
LIB_VERSION := $(shell sed -n 's/^\#define GOVERNOR_VERSION "\(.*\)"/\1/p' governor/governor.h)
$(BUILD)/libgovernor.so.0: $(LIB_OBJ) governor/libgovernor.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libgovernor.so.0 -Wl,--version-script=governor/libgovernor.map \
	    -Wl,-z,relro,-z,now $(if $(SAN),,-Wl,--no-undefined) -pthread $(SAN) -o $@ $(LIB_OBJ) $(LIB_LIBS)

$(BUILD)/libgovernor.so: $(BUILD)/libgovernor.so.0
	$(Q)ln -sf libgovernor.so.0 $@

# governor.pc with the default PREFIX (make install writes its own for the
# PREFIX it is given)
$(BUILD)/governor.pc: governor/governor.pc.in governor/governor.h Makefile
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIB_VERSION)|' \
	    -e 's|@REQUIRES@|$(LIB_PKGS)|' $< > $@

# ---- install --------------------------------------------------------------------
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  := $(DESTDIR)$(PREFIX)/lib
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(BUILD)/governord $(DESTDIR)$(PREFIX)/bin/governord
	install -m 0755 $(BUILD)/libgovernor.so.0 $(LIBDIR)/libgovernor.so.0
	ln -sf libgovernor.so.0 $(LIBDIR)/libgovernor.so
	install -m 0644 $(BUILD)/libgovernor.a $(LIBDIR)/libgovernor.a
	install -m 0644 governor/governor.h $(DESTDIR)$(PREFIX)/include/governor.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIB_VERSION)|' -e 's|@REQUIRES@|$(LIB_PKGS)|' \
	    governor/governor.pc.in > $(LIBDIR)/pkgconfig/governor.pc
	chmod 0644 $(LIBDIR)/pkgconfig/governor.pc

$(BUILD)/governord: $(MAIN_OBJ) $(APP_OBJ) $(BUILD)/libgovernor.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(APP_OBJ) $(BUILD)/libgovernor.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS_PKG) -Itests/unit -DFIXTURES='"$(CURDIR)/tests/fixtures"' -DSRCDIR='"$(CURDIR)"' \
	    $(LDFLAGS) -o $@ $< $(APP_OBJ) $(BUILD)/libgovernor.a $(LIBS) $(TEST_LIBS_PKG)

# ---- set-up -------------------------------------------------------------------
deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	scripts/run-local.sh ./$(BUILD)/governord

# ---- tests ----------------------------------------------------------------------
# Every suite `make test` runs, one per line (later suites append here).
TEST_TARGETS := unit-run
TEST_TARGETS += test-asan
TEST_TARGETS += test-tsan
TEST_TARGETS += integration
TEST_TARGETS += integration-asan
TEST_TARGETS += test-kernel
TEST_TARGETS += test-lib
TEST_TARGETS += test-chart
TEST_TARGETS += test-rules
TEST_TARGETS += test-container
TEST_TARGETS += test-systemd
TEST_TARGETS += test-vm
TEST_TARGETS += test-browser
TEST_TARGETS += test-fuzz
TEST_TARGETS += test-valgrind
TEST_TARGETS += lint

test: deps-test
	@$(MAKE) --no-print-directory all
	@n=0; for t in $(TEST_TARGETS); do \
	    echo "=== make $$t"; \
	    $(MAKE) --no-print-directory $$t || { echo "suites: $$n passed, 1 failed ($$t)"; exit 1; }; \
	    n=$$((n + 1)); done; \
	echo "suites: $$n passed, 0 failed ($(TEST_TARGETS))"

unit: deps-test
	@$(MAKE) --no-print-directory unit-run

unit-run: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

ASAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

test-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(ASAN)" unit-run

# the integration suite against a governord built with ASan+UBSan: a leak or
# a memory error turns a daemon's exit status non-zero and fails the test
integration-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(ASAN)" build/asan/governord
	GOVERNORD=$(CURDIR)/build/asan/governord $(PYTHON) -m pytest -q tests/integration \
	    --ignore=tests/integration/test_kernel_v1.py

test-tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread" unit-run

integration: $(BUILD)/governord
	GOVERNORD=$(CURDIR)/$(BUILD)/governord $(PYTHON) -m pytest -q tests/integration \
	    --ignore=tests/integration/test_kernel_v1.py

test-kernel: $(BUILD)/governord
	GOVERNORD=$(CURDIR)/$(BUILD)/governord $(PYTHON) -m pytest -q -rs \
	    tests/integration/test_kernel_v1.py

# libgovernor as a user gets it: make install into a DESTDIR, examples/lru-cache
# built from a copy with pkg-config governor, run on the installed .so in a
# real memory cgroup (root; skipped without a memory controller)
test-lib: all
	$(PYTHON) -m pytest -q -rs tests/lib

test-chart: $(BUILD)/governord
	SHARED_DIR=$(SHARED_DIR) GOVERNORD=$(CURDIR)/$(BUILD)/governord $(PYTHON) -m pytest -q -rs \
	    tests/chart

# the chart's alerts (promtool test rules) and the dashboard's and the rules'
# expressions (parsed by promtool, names checked against a real scrape)
test-rules: $(BUILD)/governord
	SHARED_DIR=$(SHARED_DIR) GOVERNORD=$(CURDIR)/$(BUILD)/governord $(PYTHON) -m pytest -q -rs \
	    tests/rules

image:
	@scripts/image.sh localhost/governord:dev

# about a minute and a half on an idle machine: debootstrap (~25 s), podman
# build (~25 s), 35 s of runs; the first build also compiles libmicrohttpd
# (~80 s of CPU), then cached in build/image-cache/ (kept until `make clean`)
test-container:
	@start=$$(date +%s); $(PYTHON) -m pytest -q -rs -s tests/container; rc=$$?; \
	    echo "make test-container: $$(($$(date +%s) - start)) s"; exit $$rc

# contrib/governord.service: systemd-analyze verify and security offline, then
# the unit as written under a real systemd 252 in a QEMU VM (~30 s)
test-systemd: $(BUILD)/governord
	@tests/systemd/verify-unit.sh $(BUILD)
	@tests/systemd/vm.sh $(BUILD)

# The kernel package is cached under build/vm/ (kept by `make`, gone after
# `make clean`).
test-vm: $(BUILD)/governord
	@tests/vm/run.sh $(BUILD)/governord

demo: $(BUILD)/governord
	@scripts/demo.sh $(BUILD)/governord

# The live page in Debian's headless Chromium, driven over the DevTools
# protocol (tests/browser/cdp.py); screenshots and logs land in BROWSER_OUT.
BROWSER_OUT ?= $(CURDIR)/$(BUILD)/test-browser
test-browser: $(BUILD)/governord
	@mkdir -p $(BROWSER_OUT)
	cd tests/browser && GOVERNORD=$(CURDIR)/$(BUILD)/governord OUT_DIR=$(BROWSER_OUT) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider .
	@ls -l $(BROWSER_OUT)/live-view.png $(BROWSER_OUT)/live-view-phone.png

screenshot: test-browser
	cp $(BROWSER_OUT)/live-view.png docs/live-view.png

# ---- lint: cppcheck and clang-tidy (checks and reasons in .clang-tidy) ----
LINT_SRC := $(LIB_SRC) $(APP_SRC) $(MAIN_SRC) $(wildcard tests/fuzz/*.c)
LINT_DEFS := -D_GNU_SOURCE $(EMBED_DEFS)
# first the library boundary (scripts/check-lib-boundary.sh): app/ includes
# only governor.h, governor.h stands alone, the .so exports only gov_*
lint: $(BUILD)/libgovernor.so.0
	@scripts/check-lib-boundary.sh $(BUILD)
	cppcheck --quiet --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	    --inline-suppr --suppress=missingIncludeSystem $(LINT_DEFS) -Igovernor -Iapp -Itests/fuzz \
	    $(LINT_SRC)
	clang-tidy-14 --quiet $(LINT_SRC) -- -std=gnu11 $(LINT_DEFS) -Igovernor -Iapp -Itests/fuzz \
	    $(PKG_CFLAGS)
	@echo "lint: cppcheck and clang-tidy clean on $(words $(LINT_SRC)) files"

# ---- valgrind: the integration suite against governord under memcheck ----
# Waits are scaled (the daemon runs 20-50x slower); the load test runs 10 s.
VALGRIND_SCALE ?= 10
test-valgrind: $(BUILD)/governord
	@rm -rf build/valgrind && mkdir -p build/valgrind
	GOVERNORD=$(CURDIR)/scripts/valgrind-governord.sh GOVERNORD_BIN=$(CURDIR)/$(BUILD)/governord \
	VALGRIND_LOG_DIR=$(CURDIR)/build/valgrind GOVERNORD_TIMEOUT_SCALE=$(VALGRIND_SCALE) \
	GOVERNORD_LOAD_SECONDS=10 $(PYTHON) -m pytest -q tests/integration \
	    --ignore=tests/integration/test_kernel_v1.py || \
	    { find build/valgrind -name '*.log' -size +0 -exec tail -n 60 {} +; exit 1; }
	@if find build/valgrind -name '*.log' -size +0 | grep -q .; then \
	    find build/valgrind -name '*.log' -size +0 -exec cat {} +; exit 1; fi
	@echo "valgrind: $$(ls build/valgrind | wc -l) daemon runs, no errors, no leaks"

# ---- fuzzing: libFuzzer targets, clang 14, the library sources linked in ----
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 40
FUZZ_NAMES   := policy quantity cgroup_files proc routes trimproto
FUZZ_BIN     := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
FUZZ_CFLAGS  := -std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Igovernor -Iapp -Itests/fuzz $(shell pkg-config --cflags inih 2>/dev/null)
fuzz_src_policy       := governor/policy.c governor/quantity.c governor/util.c governor/utf8.c
fuzz_libs_policy      := $(shell pkg-config --libs inih nettle 2>/dev/null) -lm
fuzz_src_quantity     := governor/quantity.c
fuzz_src_cgroup_files := governor/cgroup_parse.c governor/util.c governor/utf8.c
fuzz_src_proc         := governor/cgroup_parse.c governor/util.c governor/utf8.c
fuzz_src_routes       := app/routes.c
fuzz_src_trimproto    := app/trimproto.c
fuzz_libs_trimproto   := $(shell pkg-config --libs jansson 2>/dev/null)

.SECONDEXPANSION:
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $$(fuzz_src_$$*)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(fuzz_src_$*) $(fuzz_libs_$*)

# each target for FUZZ_SECONDS (regressions replayed first)
test-fuzz: $(FUZZ_BIN)
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
