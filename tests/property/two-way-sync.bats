#!/usr/bin/env bats
# The two-way-sync flow under random edits on both sides between syncs,
# seeded and reproducible: creates, field edits (the same field and
# different fields of one record), deletes, delete against edit, the same
# key created on both sides.  After every sync both sides hold exactly what
# the model of helpers/twoway.bash expects (so every edit that was not part
# of a conflict is there), every conflict is recorded once with its losing
# value, and a second sync right away writes nothing to either side.
#
# RECDELTA_SEED sets the seed (default: a new one, printed on failure);
# RECDELTA_ROUNDS the number of rounds (default 200).  Not part of make
# check, for its length: make check-property runs it, and CI.

bats_require_minimum_version 1.5.0

load ../helpers/common
load ../helpers/cloudkit
load ../helpers/apache
load ../helpers/twoway

teardown() {
	ck_stop
	dav_stop
}

SEED=${RECDELTA_SEED:-$(( $(date +%s) % 100000 ))}
ROUNDS=${RECDELTA_ROUNDS:-200}

# rounds: the property, ROUNDS times, on the two stores of tw_init.
rounds() {
	local round before
	for ((round = 1; round <= ROUNDS; round++)); do
		# Each policy in turn.
		if ((round % 3 == 0)); then TW_PREFER=remote; else TW_PREFER=local; fi
		tw_edit_round $((SEED * 1000 + round)) ||
		    fail "seed $SEED round $round: the edits could not be made"
		run --separate-stderr tw_sync
		[ "$status" -eq 0 ] ||
		    fail "seed $SEED round $round: the sync exited $status: $stderr"
		[ "$(tw_live "$TW_LOCAL")" = "$(tw_expected)" ] ||
		    fail "seed $SEED round $round: local holds
$(tw_live "$TW_LOCAL")
expected
$(tw_expected)"
		[ "$(tw_live "$TW_REMOTE")" = "$(tw_expected)" ] ||
		    fail "seed $SEED round $round: remote holds
$(tw_live "$TW_REMOTE")
expected
$(tw_expected)"
		[ "$(tw_conflicts)" = "$TW_CONFLICTS" ] ||
		    fail "seed $SEED round $round: conflicts recorded
$(recdelta-checkpoint conflicts --all --json | tail -n 5)
expected (key field loser)
$TW_CONFLICTS"
		before=$(tw_digest)
		run --separate-stderr tw_sync
		[ "$status" -eq 0 ] && [ "$(tw_digest)" = "$before" ] ||
		    fail "seed $SEED round $round: a second sync exited $status or wrote: $stderr"
		tw_accept
	done
}

@test "two-way-sync over sqlite: and dir:, random edits on both sides: nothing lost, conflicts kept once, seed printed" {
	export RECDELTA_STATE=$PWD/state.db
	tw_init sqlite dir
	rounds
}

@test "two-way-sync over dir: and cloudkit:, random edits on both sides: nothing lost, conflicts kept once, seed printed" {
	export RECDELTA_STATE=$PWD/state.db
	ck_start
	chmod 600 "$CK_KEY_FILE"
	export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
	export RECDELTA_CLOUDKIT_URL=$CK_URL RECDELTA_CLOUDKIT_CONFIG=$PWD/none.conf
	export RECDELTA_HTTP_BACKOFF=0.05
	tw_init dir cloudkit
	rounds
}

@test "two-way-sync over dir: and webdav: (Apache), random edits on both sides: nothing lost, conflicts kept once, seed printed" {
	export RECDELTA_STATE=$PWD/state.db
	dav_start
	export RECDELTA_HTTP_BACKOFF=0.05
	tw_init dir webdav
	rounds
}
