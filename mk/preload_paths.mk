# SPDX-License-Identifier: Apache-2.0
# test/preload_paths.sh (issue 15, F4 F5 C3): the preload's exported symbols
# against what preload.c interposes, an application's own ClientHello
# callback, programs that dlopen libssl (RTLD_LOCAL, RTLD_DEEPBIND, dlsym()
# and dlvsym() on the handle, dlmopen), Debian's python3 in both roles, and
# Schannel-mapped values under the preload (s_server, nginx).
#
# The helpers link libssl (or nothing), never libemsguard: the policy reaches
# them only through LD_PRELOAD, as it reaches stock programs.

INTEGRATION_SCRIPTS += preload_paths.sh

PRELOAD_PATHS_BINS := $(BUILD)/test/preload/hello_server $(BUILD)/test/preload/dl_client \
                      $(BUILD)/test/preload/dl_client_rp $(BUILD)/test/preload/libegdlplugin.so

tests: $(PRELOAD_PATHS_BINS)

$(BUILD)/test/preload/hello_server.o $(BUILD)/test/preload/dl_client.o \
$(BUILD)/test/preload/dl_plugin.o: test/preload/dl_api.h

$(BUILD)/test/preload/hello_server: $(BUILD)/test/preload/hello_server.o
	$(CC) $(SANFLAGS) -o $@ $< $(SSL_LIBS)

# No libssl: the program dlopens it.  syslog() is exported so that the
# preload's syslog() calls land in the program (see dl_client.c).
DL_CLIENT_LDFLAGS := $(SANFLAGS) -Wl,--export-dynamic-symbol=syslog \
    -Wl,--export-dynamic-symbol=vsyslog -Wl,--export-dynamic-symbol=__syslog_chk \
    -Wl,--export-dynamic-symbol=__vsyslog_chk

$(BUILD)/test/preload/dl_client: $(BUILD)/test/preload/dl_client.o
	$(CC) $(DL_CLIENT_LDFLAGS) -o $@ $< -ldl

# The same with a DT_RUNPATH that finds the plugin by its bare name: the
# preload's dlopen() must leave that search to glibc, on the caller's behalf.
$(BUILD)/test/preload/dl_client_rp: $(BUILD)/test/preload/dl_client.o
	$(CC) $(DL_CLIENT_LDFLAGS) -Wl,--enable-new-dtags \
	    -Wl,-rpath,$(abspath $(BUILD))/test/preload -o $@ $< -ldl

$(BUILD)/test/preload/libegdlplugin.so: $(BUILD)/test/preload/dl_plugin.o
	$(CC) -shared $(SANFLAGS) -o $@ $< $(SSL_LIBS) -ldl
