# recdelta - keep a remote record store in step with local data.
.POSIX:

include config.mk

BIN = \
	bin/recdelta \
	bin/recdelta-checkpoint \
	bin/recdelta-diff \
	bin/recdelta-fetch \
	bin/recdelta-merge \
	bin/recdelta-push

LIBOBJ = \
	lib/digest.o \
	lib/filter.o \
	lib/http.o \
	lib/index.o \
	lib/insync.o \
	lib/json.o \
	lib/log.o \
	lib/plain.o \
	lib/record.o \
	lib/scan.o \
	lib/shard.o \
	lib/side.o \
	lib/state.o \
	lib/state_insync.o \
	lib/state_lock.o \
	lib/state_query.o \
	lib/state_record.o \
	lib/state_windows.o \
	lib/store.o \
	lib/store_cloudkit.o \
	lib/store_couchdb.o \
	lib/store_dir.o \
	lib/store_json.o \
	lib/store_layout.o \
	lib/store_sqlite.o \
	lib/store_webdav.o \
	lib/stream.o \
	lib/util.o

LIBHDR = lib/digest.h lib/filter.h lib/http.h lib/index.h lib/insync.h lib/json.h lib/log.h lib/plain.h \
	lib/record.h lib/scan.h lib/shard.h lib/side.h lib/state.h lib/state_int.h lib/store.h lib/store_cloudkit.h \
	lib/store_layout.h lib/stream.h lib/util.h

FLOWS = pipelines/diff-only pipelines/historical-import pipelines/smart-sync \
	pipelines/two-way-sync pipelines/undo \
	pipelines/recdelta-sh-setup

MAN1 = man/man1/recdelta.1 man/man1/recdelta-checkpoint.1 man/man1/recdelta-diff.1 \
	man/man1/recdelta-fetch.1 man/man1/recdelta-merge.1 man/man1/recdelta-push.1
MAN5 = man/man5/recdelta-stream.5
MAN7 = man/man7/recdelta-flows.7

ALL_CFLAGS = $(CFLAGS) $(SAN:1=$(SANFLAGS))
ALL_LDFLAGS = $(LDFLAGS) $(SAN:1=$(SANFLAGS))

all: $(BIN)

lib/librecdelta.a: $(LIBOBJ)
	rm -f $@
	$(AR) rcs $@ $(LIBOBJ)

$(LIBOBJ): $(LIBHDR) config.mk

.c.o:
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BIN): lib/librecdelta.a $(LIBHDR) config.mk

bin/recdelta: bin/recdelta.c
bin/recdelta-checkpoint: bin/recdelta-checkpoint.c
bin/recdelta-diff: bin/recdelta-diff.c
bin/recdelta-fetch: bin/recdelta-fetch.c
bin/recdelta-merge: bin/recdelta-merge.c
bin/recdelta-push: bin/recdelta-push.c

# The programs that run the user's jq filters (lib/filter.c) link libjq;
# every program of BIN is in one of the two lists.
BIN_JQ = bin/recdelta-diff bin/recdelta-fetch
BIN_NOJQ = bin/recdelta bin/recdelta-checkpoint bin/recdelta-merge bin/recdelta-push

$(BIN_NOJQ):
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

$(BIN_JQ):
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a \
	    $(JQLIBS) $(LDLIBS)

# The fault-injection shim of tests/fault-injection.bats (no sanitizers:
# it is preloaded into programs that may have them).
SHIM = tests/helpers/faultinject.so

$(SHIM): tests/helpers/faultinject.c
	$(CC) $(CFLAGS) -fPIC -shared -o $@ tests/helpers/faultinject.c -ldl

# One request through lib/http, for tests/http.bats.
HTTPREQ = tests/helpers/httpreq

$(HTTPREQ): tests/helpers/httpreq.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# Every line kind through lib/stream's parser and writer, for tests/stream.bats.
STREAMKINDS = tests/helpers/streamkinds

$(STREAMKINDS): tests/helpers/streamkinds.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# The keyed index seen from outside, for tests/index.bats.
INDEXWALK = tests/helpers/indexwalk

$(INDEXWALK): tests/helpers/indexwalk.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# The "seen" of records (record_hash, no rules), for the content-guard suites.
SEENHASH = tests/helpers/seenhash

$(SEENHASH): tests/helpers/seenhash.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# json_number_key against strtod, for tests/own-json.bats.
NUMKEY = tests/helpers/numkey

$(NUMKEY): tests/helpers/numkey.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# scan_record() against the exact parser, line by line, for tests/own-json.bats.
SCANLINE = tests/helpers/scanline

$(SCANLINE): tests/helpers/scanline.c lib/librecdelta.a $(LIBHDR) config.mk
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $@.c lib/librecdelta.a $(LDLIBS)

# TESTS: the suites to run (make check TESTS=tests/recdelta-diff.bats).
TESTS = tests

check: all $(SHIM) $(HTTPREQ) $(STREAMKINDS) $(INDEXWALK) $(SEENHASH) $(NUMKEY) $(SCANLINE) bench/recgen
	bats --timing --jobs $${BATS_JOBS:-2} $(TESTS)

# The seeded property suites of tests/property (minutes: not in make
# check): RECDELTA_ROUNDS rounds each (default 200), RECDELTA_SEED to
# repeat a failure.
check-property: all $(SHIM) $(HTTPREQ) $(STREAMKINDS) $(INDEXWALK) $(SEENHASH) $(NUMKEY) $(SCANLINE) bench/recgen
	bats --jobs $${BATS_JOBS:-2} tests/property

# Each suite under valgrind: every program run by the tests is wrapped.
check-valgrind: all $(SHIM) $(HTTPREQ) $(STREAMKINDS) $(INDEXWALK) $(SEENHASH) $(NUMKEY) $(SCANLINE)
	RECDELTA_VALGRIND=1 bats --jobs $${BATS_JOBS:-2} $(TESTS)

# A separate build with the sanitizers, then the suite.
check-san:
	$(MAKE) clean
	$(MAKE) SAN=1 check
	$(MAKE) clean

# The sample data, what differs from its remote copy, a sync, and again.
demo: all
	sh examples/mksample build/sample
	rm -f build/sample/state.db*
	@echo '$$ recdelta diff-only'
	@PATH="$$PWD/bin:$$PATH" bin/recdelta diff-only \
	    --local ndjson:build/sample/local.ndjson --remote dir:build/sample/remote
	@echo '$$ recdelta smart-sync'
	@PATH="$$PWD/bin:$$PATH" RECDELTA_STATE=build/sample/state.db \
	    bin/recdelta smart-sync \
	    --local ndjson:build/sample/local.ndjson --remote dir:build/sample/remote
	@echo '$$ recdelta diff-only'
	@PATH="$$PWD/bin:$$PATH" bin/recdelta diff-only \
	    --local ndjson:build/sample/local.ndjson --remote dir:build/sample/remote

bench/recgen: bench/recgen.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ bench/recgen.c -lm

bench: all bench/recgen
	sh bench/run

# recdelta-merge against recdelta-diff on one data set, time and memory.
bench-merge: all bench/recgen
	sh bench/merge

# Requests a CloudKit sync spends, against the emulator (needs node).
bench-cloudkit: all bench/recgen
	bash bench/cloudkit-requests

# What a sync to pouchdb-server costs, against PouchDB's replicator.
bench-couchdb: all bench/recgen
	bash bench/couchdb

# Requests and wall time of the webdav: store, against Apache (needs apache2).
bench-webdav: all
	bash bench/webdav

# How a run's cost grows with the store: 100k and 1M records (minutes).
bench-scale: all bench/recgen
	bash bench/scale

# A 1 GB json: array streamed by recdelta-fetch under 100 MB of memory.
bench-json: all
	sh bench/json

# libFuzzer harnesses (fuzz/README): the lib objects built again with clang
# and the sanitizers under build/fuzz, apart from the normal build's.
FUZZ = json record dirmeta cloudkit jsonarray
FUZZ_SECONDS = 60
FUZZCC = clang
FUZZCFLAGS = $(CFLAGS) -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
FUZZLIB = build/fuzz/librecdelta.a
FUZZBIN = build/fuzz/json build/fuzz/record build/fuzz/dirmeta build/fuzz/cloudkit \
	build/fuzz/jsonarray

fuzz-build: $(FUZZBIN)

$(FUZZLIB): $(LIBOBJ:.o=.c) $(LIBHDR) config.mk
	mkdir -p build/fuzz/lib
	rm -f $@
	objs=; for f in $(LIBOBJ:.o=); do \
		$(FUZZCC) $(CPPFLAGS) $(FUZZCFLAGS) -fsanitize=fuzzer-no-link \
		    -c $$f.c -o build/fuzz/$$f.o || exit 1; \
		objs="$$objs build/fuzz/$$f.o"; \
	done; \
	$(AR) rcs $@ $$objs

$(FUZZBIN): $(FUZZLIB) $(LIBHDR) config.mk
build/fuzz/json: fuzz/json.c
build/fuzz/record: fuzz/record.c
build/fuzz/dirmeta: fuzz/dirmeta.c
build/fuzz/cloudkit: fuzz/cloudkit.c
build/fuzz/jsonarray: fuzz/jsonarray.c

$(FUZZBIN):
	$(FUZZCC) $(CPPFLAGS) $(FUZZCFLAGS) -fsanitize=fuzzer -o $@ \
	    fuzz/$(@F).c $(FUZZLIB) $(LDLIBS)

# Each harness for FUZZ_SECONDS on a scratch copy of its corpus; its output
# in build/fuzz/NAME.log (the final figures are shown), crash-*, leak-* and
# timeout-* files in build/fuzz.  Fails if any was found.
fuzz: fuzz-build
	@failed=; n=0; for f in $(FUZZ); do \
		n=$$((n + 1)); \
		rm -rf build/fuzz/corpus/$$f; mkdir -p build/fuzz/corpus/$$f; \
		cp fuzz/corpus/$$f/* build/fuzz/corpus/$$f/; \
		dict=; [ -f fuzz/$$f.dict ] && dict=-dict=fuzz/$$f.dict; \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		if ASAN_OPTIONS=detect_leaks=1 build/fuzz/$$f $$dict \
		    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
		    -print_final_stats=1 -artifact_prefix=build/fuzz/$$f- \
		    build/fuzz/corpus/$$f > build/fuzz/$$f.log 2>&1; then \
			grep -E '^#[0-9]+[[:space:]]+DONE|^stat::' build/fuzz/$$f.log; \
			echo "ok $$n fuzz $$f"; \
		else \
			tail -n 60 build/fuzz/$$f.log; \
			echo "not ok $$n fuzz $$f"; failed="$$failed $$f"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	mkdir -p $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man5
	mkdir -p $(DESTDIR)$(MANPREFIX)/man7
	cp -f $(BIN) $(DESTDIR)$(BINDIR)
	cp -f $(FLOWS) $(DESTDIR)$(LIBEXECDIR)
	cp -f $(MAN1) $(DESTDIR)$(MANPREFIX)/man1
	cp -f $(MAN5) $(DESTDIR)$(MANPREFIX)/man5
	cp -f $(MAN7) $(DESTDIR)$(MANPREFIX)/man7
	mkdir -p $(DESTDIR)$(COMPLETIONDIR)
	cp -f completion/recdelta.bash $(DESTDIR)$(COMPLETIONDIR)/recdelta
	for f in $(BIN); do \
		[ "$${f#bin/}" = recdelta ] || ln -sf recdelta $(DESTDIR)$(COMPLETIONDIR)/$${f#bin/}; \
	done

uninstall:
	for f in $(BIN); do rm -f $(DESTDIR)$(BINDIR)/$${f#bin/}; done
	for f in $(FLOWS); do rm -f $(DESTDIR)$(LIBEXECDIR)/$${f#pipelines/}; done
	for f in $(MAN1) $(MAN5) $(MAN7); do rm -f $(DESTDIR)$(MANPREFIX)/$${f#man/}; done
	for f in $(BIN); do rm -f $(DESTDIR)$(COMPLETIONDIR)/$${f#bin/}; done

clean:
	rm -f $(BIN) $(LIBOBJ) lib/librecdelta.a bench/recgen $(SHIM) $(HTTPREQ) \
	    $(STREAMKINDS) $(INDEXWALK) $(SEENHASH) $(NUMKEY) $(SCANLINE)
	rm -rf build

.PHONY: all check check-property check-valgrind check-san demo bench bench-merge bench-cloudkit bench-scale \
	bench-couchdb bench-webdav bench-json fuzz fuzz-build install uninstall clean
