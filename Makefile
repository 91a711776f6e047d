# SPDX-License-Identifier: Apache-2.0
# emsguard -- build, test, install.
#
#   make                 the product: library, provider module, preload library,
#                        `emsguard` CLI, emsguard.pc (needs no libcheck)
#   make tests           the test programs and the demo binary (needs libcheck)
#   make check           unit tests, in-memory handshake tests, integration
#                        (eg_peer, and libemsguard-preload.so with stock
#                        openssl, curl and nginx)
#   make check SANITIZE=1  the same under ASan+UBSan (objects in build-san/)
#   SANITIZE=thread      a ThreadSanitizer tree (build-tsan/), for the stress test
#   make demo            `emsguard probe` of a legacy and an emsguard server side
#                        by side, then the stock-vs-emsguard handshake table
#   make bench           handshake benchmark: ratios to stock, CSV, SVG chart
#   make check-debian13  the install step and `make check` in a Debian 13 root
#                        (OpenSSL 3.5; debootstrap, as root; mk/debian.mk)
#   make man             the man pages from man/*.scd (needs scdoc; mk/man.mk)
#   make check-packages  builds the Debian packages in a Debian 13 root and tests
#                        them installed in a clean one (as root; mk/packages.mk)
#   make install         honours PREFIX, DESTDIR, BINDIR, LIBDIR, MODULESDIR,
#                        PRELOADDIR, MANDIR; installs the man pages too
#   make clean

VERSION    := 0.1.0
SOVERSION  := 0

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The provider module goes where libcrypto looks for modules by default.
MODULESDIR ?= $(shell pkg-config --variable=modulesdir libcrypto)
# libemsguard-preload.so has no SONAME: nothing links it, LD_PRELOAD names
# it by path.  The Debian package keeps it out of the linker path.
PRELOADDIR ?= $(LIBDIR)
MANDIR     ?= $(PREFIX)/share/man

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
SSL_CFLAGS := $(shell pkg-config --cflags libssl libcrypto)
SSL_LIBS   := $(shell pkg-config --libs libssl libcrypto)
# libcheck is asked for only when a Check suite is built (evaluated once, on
# first use), so `make all` and `make install` work without it.
CHECK_CFLAGS = $(eval CHECK_CFLAGS := $$(shell pkg-config --cflags check))$(CHECK_CFLAGS)
CHECK_LIBS   = $(eval CHECK_LIBS := $$(shell pkg-config --libs check))$(CHECK_LIBS)

# BUILD_DIR lets several trees build side by side (make BUILD_DIR=build-x).
BUILD_DIR ?= build
ifeq ($(SANITIZE),1)
BUILD    := $(BUILD_DIR)-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else ifeq ($(SANITIZE),thread)
BUILD    := $(BUILD_DIR)-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
BUILD    := $(BUILD_DIR)
SANFLAGS :=
endif

# -fno-plt: calls into libssl and libcrypto load their target from the GOT
# instead of jumping through a PLT stub.  The policy runs a few times per
# handshake and is cold each time; callgrind counts 22 % fewer of its
# instruction-cache misses and 67 % fewer indirect-branch mispredicts.
CODEGEN := -fno-plt
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -Iinclude -Iprovider $(SSL_CFLAGS) $(WARN) $(CODEGEN) $(CFLAGS) $(SANFLAGS)

LIB_SRCS := provider/errors.c provider/log.c provider/policy_keys.c \
            provider/policy_warnings.c provider/policy_names.c provider/policy.c \
            provider/policy_rules.c \
            provider/conf_file.c provider/reg_text.c provider/reg_keys.c \
            provider/reg_values.c provider/reg_suites.c provider/reg_notes.c provider/reg_file.c provider/schannel_map.c \
            provider/schannel_apply.c provider/schannel_hold.c \
            provider/session_flags.c provider/fingerprint.c provider/records.c \
            provider/peer_text.c provider/reuse_diagnosis.c \
            provider/hooks_state.c provider/hooks_log.c provider/hooks_refused.c \
            provider/hooks_dhe.c provider/hooks_security.c provider/hooks_schannel.c \
            provider/hooks_server.c provider/hooks_hello.c provider/hooks_client.c \
            provider/hooks_handshake.c provider/hooks_enable.c provider/hooks_chain.c \
            provider/prf_guard.c provider/report.c provider/stats_publish.c \
            provider/conf_providers.c provider/provider_params.c provider/provider_lookup.c \
            provider/provider.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

LIBNAME  := libemsguard.so
SONAME   := $(LIBNAME).$(SOVERSION)
LIBFILE  := $(LIBNAME).$(VERSION)
PRELOAD  := $(BUILD)/libemsguard-preload.so

# Check suites run by unit-check, shell scripts run by integration-check.
# Makefile fragments in mk/ append to these lists, add their programs to
# `tests` and their own link rules; each fragment owns one test concern.
# EXTRA_CHECKS: targets `make check` runs once after both passes (their own
# trees: ThreadSanitizer stress, fuzzing; or a short run: bench smoke).
EXTRA_CHECKS :=
UNIT_SUITES := check_config check_handshake check_guard check_schannel
INTEGRATION_SCRIPTS := integration.sh preload.sh
TEST_BINS := $(BUILD)/test/check_config $(BUILD)/test/check_handshake \
             $(BUILD)/test/check_guard $(BUILD)/test/check_schannel \
             $(BUILD)/test/eg_peer
DEMO_BIN  := $(BUILD)/demo/emsguard-demo

.PHONY: all tests check unit-check integration-check demo bench install uninstall clean

# The product only (mk/tools.mk adds the CLI); nothing here needs libcheck.
all: $(BUILD)/$(LIBFILE) $(BUILD)/$(SONAME) $(BUILD)/$(LIBNAME) \
     $(BUILD)/emsguard.so $(PRELOAD) $(BUILD)/emsguard.pc

# Everything `make check` runs, on top of the product; mk/*.mk add theirs.
# The demo binary is built here too, so that `make check` proves it compiles.
tests: all $(TEST_BINS) $(DEMO_BIN)

$(BUILD)/%.o: %.c $(wildcard provider/*.h) include/emsguard.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/$(LIBFILE): $(LIB_OBJS) provider/emsguard.map
	$(CC) -shared $(SANFLAGS) $(LDFLAGS) -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=provider/emsguard.map -Wl,-z,defs -Wl,-z,nodelete \
	    -o $@ $(LIB_OBJS) $(SSL_LIBS)

$(BUILD)/$(SONAME) $(BUILD)/$(LIBNAME) $(BUILD)/emsguard.so: $(BUILD)/$(LIBFILE)
	ln -sf $(LIBFILE) $@

# The preload library links only libc (-z defs proves it calls nothing in
# libssl directly); it finds libssl and libemsguard at run time.
# preload.c defines exactly the interposed functions (test/preload_paths.sh
# reads preload.o); the preload_*.c files behind it are hidden.
PRELOAD_SRCS := provider/preload.c provider/preload_dlopen.c provider/preload_route.c \
                provider/preload_ctx.c provider/preload_init.c provider/preload_escape.c \
                provider/preload_policy.c provider/preload_resolve.c provider/preload_log.c
PRELOAD_OBJS := $(PRELOAD_SRCS:%.c=$(BUILD)/%.o)
$(PRELOAD): $(PRELOAD_OBJS) provider/preload.map
	$(CC) -shared $(SANFLAGS) $(LDFLAGS) -Wl,--version-script=provider/preload.map \
	    -Wl,-z,defs -Wl,-z,nodelete -o $@ $(PRELOAD_OBJS) -ldl -lpthread

$(BUILD)/emsguard.pc: emsguard.pc.in Makefile
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@MODULESDIR@|$(MODULESDIR)|' $< > $@

# Test programs link the library from the build tree.
TEST_LDFLAGS := $(SANFLAGS) -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lemsguard $(SSL_LIBS) -lpthread

# -lemsguard resolves through the unversioned symlink, and the provider
# module name (emsguard.so) must exist before any test loads it.
TEST_DEPS := $(BUILD)/$(SONAME) $(BUILD)/$(LIBNAME) $(BUILD)/emsguard.so

$(BUILD)/test/check_config: $(BUILD)/test/check_config.o $(TEST_DEPS)
	$(CC) -o $@ $< $(TEST_LDFLAGS) $(CHECK_LIBS)

$(BUILD)/test/check_handshake: $(BUILD)/test/check_handshake.o $(BUILD)/test/harness.o \
                              $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_handshake.o $(BUILD)/test/harness.o \
	    $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)

$(BUILD)/test/check_guard: $(BUILD)/test/check_guard.o $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_guard.o $(BUILD)/test/harness.o $(TEST_LDFLAGS) $(CHECK_LIBS)

$(BUILD)/test/check_schannel: $(BUILD)/test/check_schannel.o $(BUILD)/test/harness.o \
                             $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_schannel.o $(BUILD)/test/harness.o \
	    $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)

$(BUILD)/test/eg_peer: $(BUILD)/test/eg_peer.o $(TEST_DEPS)
	$(CC) -o $@ $< $(TEST_LDFLAGS)

$(BUILD)/test/%.o: test/%.c $(wildcard test/*.h) include/emsguard.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itest -c -o $@ $<

$(DEMO_BIN): $(BUILD)/demo/emsguard-demo.o $(TEST_DEPS)
	$(CC) -o $@ $< $(TEST_LDFLAGS)

# `make check` runs the suite on the normal build, then again under
# ASan+UBSan; `make check SANITIZE=1` runs only the sanitizer pass.
ifeq ($(SANITIZE),1)
check: all unit-check integration-check
else
check: all unit-check integration-check
	$(MAKE) SANITIZE=1 check
	@set -e; for t in $(EXTRA_CHECKS); do $(MAKE) $$t; done
endif

# Leak checking stays on under ASan; UBSan findings are fatal.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

unit-check: tests
	@set -e; for t in $(UNIT_SUITES); do \
	    echo "== $$t"; \
	    $(SAN_ENV) BUILD=$(BUILD) SANITIZE=$(SANITIZE) $(BUILD)/test/$$t; \
	done

integration-check: tests
	@set -e; for t in $(INTEGRATION_SCRIPTS); do \
	    echo "== $$t"; \
	    $(SAN_ENV) BUILD=$(BUILD) SANITIZE=$(SANITIZE) bash test/$$t; \
	done

-include $(sort $(wildcard mk/*.mk))

# The probe against a stock legacy server and an emsguard server, side by
# side; then the measured stock-vs-emsguard handshake table.
demo: all $(DEMO_BIN)
	BUILD=$(BUILD) bash demo/probe-demo.sh
	BUILD=$(BUILD) $(DEMO_BIN)

install: all $(TOOL_INSTALL_BIN) install-man
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MODULESDIR) $(DESTDIR)$(PRELOADDIR)
	install -m 0755 $(BUILD)/$(LIBFILE) $(DESTDIR)$(LIBDIR)/$(LIBFILE)
	ln -sf $(LIBFILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(LIBFILE) $(DESTDIR)$(LIBDIR)/$(LIBNAME)
	install -m 0755 $(PRELOAD) $(DESTDIR)$(PRELOADDIR)/libemsguard-preload.so
	install -m 0644 include/emsguard.h $(DESTDIR)$(INCLUDEDIR)/emsguard.h
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(TOOL_INSTALL_BIN) $(DESTDIR)$(BINDIR)/emsguard
	install -m 0644 $(BUILD)/emsguard.pc $(DESTDIR)$(PKGCONFIGDIR)/emsguard.pc
	# The module is the same file as the library, so an application that
	# links libemsguard and loads the provider shares one copy of it.
	ln -sf $(LIBDIR)/$(LIBFILE) $(DESTDIR)$(MODULESDIR)/emsguard.so
	-[ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null && ldconfig || true

uninstall: uninstall-man
	rm -f $(DESTDIR)$(LIBDIR)/$(LIBFILE) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/$(LIBNAME) $(DESTDIR)$(PRELOADDIR)/libemsguard-preload.so \
	    $(DESTDIR)$(INCLUDEDIR)/emsguard.h $(DESTDIR)$(BINDIR)/emsguard \
	    $(DESTDIR)$(PKGCONFIGDIR)/emsguard.pc $(DESTDIR)$(MODULESDIR)/emsguard.so

# Every tree a build makes: the default names and those of BUILD_DIR (the
# normal, ASan+UBSan, ThreadSanitizer and fuzzing trees; the bench writes
# only into $(BUILD)/bench).  mk/fuzz.mk adds FUZZ_DIR.
clean:
	rm -rf build build-san build-tsan build-fuzz \
	    $(BUILD_DIR) $(BUILD_DIR)-san $(BUILD_DIR)-tsan $(BUILD_DIR)-fuzz
