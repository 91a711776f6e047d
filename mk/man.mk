# SPDX-License-Identifier: Apache-2.0
# The man pages: one scdoc source per page in man/ (NAME.SECTION.scd), built
# into $(BUILD)/man/ and installed by `make install` under $(MANDIR).
#
#   make man        build the pages (needs scdoc)
#   make check-man  `man --warnings` on every page must print nothing, and
#                   every function of include/emsguard.h must have a page
#
# A section-3 page documents a family of functions: every name in its NAME
# line is installed as a link to it, so `man EMSGUARD_enable_ex` opens
# EMSGUARD_enable(3).
MAN_SRCS  := $(sort $(wildcard man/*.scd))
MAN_PAGES := $(MAN_SRCS:man/%.scd=$(BUILD)/man/%)

.PHONY: man install-man uninstall-man check-man

man: $(MAN_PAGES)

$(BUILD)/man/%: man/%.scd
	@mkdir -p $(dir $@)
	@command -v scdoc >/dev/null || { echo "scdoc not found: apt-get install scdoc" >&2; exit 1; }
	@# scdoc asks for no hyphenation (which would split EMSGUARD_enable) and
	@# ragged right (long key names cannot be spread: groff 1.23 warns
	@# "cannot adjust line") before .TH, but groff 1.23's man macros reset
	@# both from HY and AD at .TH and each paragraph: set those too.
	scdoc < $< > $@.tmp && sed -i '/^\.TH /i .nr HY 0\n.ds AD l' $@.tmp && mv $@.tmp $@

# The names in a page's NAME paragraph ("A, B, C - what they do").
man_names = awk '/^\# NAME/ { n = 1; next } n && /^\# / { exit } n { printf "%s ", $$0 }' \
    man/$(1).scd | sed 's/ - .*//; s/,/ /g'

install-man: man
	@set -e; for p in $(MAN_PAGES); do \
	    page=$$(basename $$p); sect=$${page##*.}; \
	    install -d $(DESTDIR)$(MANDIR)/man$$sect; \
	    install -m 0644 $$p $(DESTDIR)$(MANDIR)/man$$sect/$$page; \
	    for n in $$($(call man_names,$$page)); do \
	        [ "$$n.$$sect" = "$$page" ] || ln -sf $$page $(DESTDIR)$(MANDIR)/man$$sect/$$n.$$sect; \
	    done; \
	done

uninstall-man:
	@set -e; for p in $(MAN_SRCS); do \
	    page=$$(basename $$p .scd); sect=$${page##*.}; \
	    for n in $$($(call man_names,$$page)); do \
	        rm -f $(DESTDIR)$(MANDIR)/man$$sect/$$n.$$sect; \
	    done; \
	    rm -f $(DESTDIR)$(MANDIR)/man$$sect/$$page; \
	done

check-man: man
	@set -e; status=0; \
	for p in $(MAN_PAGES); do \
	    w=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l $$p 2>&1 >/dev/null); \
	    if [ -n "$$w" ]; then echo "check-man: $$p:"; echo "$$w"; status=1; fi; \
	done; \
	documented=$$(for s in man/*.3.scd; do page=$$(basename $$s .scd); $(call man_names,$$page); done | tr ' ' '\n'); \
	for f in $$(grep -o '\bEMSGUARD_[A-Za-z0-9_]*(' include/emsguard.h | tr -d '(' | sort -u); do \
	    echo "$$documented" | grep -qx "$$f" || { echo "check-man: $$f has no man page (man/*.3.scd NAME line)"; status=1; }; \
	done; \
	[ $$status -eq 0 ] && echo "check-man: $(words $(MAN_PAGES)) pages, no warnings; every API function documented"; \
	exit $$status

# `make check` runs it once, after both passes (scdoc and man-db come from
# .ci/install-deps).
EXTRA_CHECKS += check-man
