#!/usr/bin/env bats
# --shard I/N (recdelta-stream(5), "Shards"; recdelta-flows(7), "Shards"):
# the shard of a record is a fixed function of its type and key; every
# program and flow keeps only its shard's records, on every side; the N
# shards run side by side under GNU parallel, each with its own scope and
# state, and together do what one unsharded run does.  The recipes run
# here are read from recdelta-flows(7) itself.

bats_require_minimum_version 1.5.0

load helpers/common

# recipe WORDS: the command of recdelta-flows(7) that begins
# `parallel --will-cite -j "$N" WORDS `, its continued lines joined, as the
# page's source spells it (a trailing \e continues the line).
recipe() {
	awk -v start="parallel --will-cite -j \"\$N\" $1 " '
	    index($0, start) == 1 { on = 1 }
	    on { line = $0; sub(/\\e$/, "", line); printf "%s", line; if ($0 !~ /\\e$/) exit }
	' "$TOP/man/man7/recdelta-flows.7"
}

# run_recipe WORDS: run that command with N, SRC, TGT and the others from
# the environment; a recipe the page lacks fails the test.
run_recipe() {
	local cmd
	cmd=$(recipe "$1")
	[ -n "$cmd" ] || fail "recdelta-flows(7) has no recipe for \"$1\""
	run --separate-stderr bash -c "$cmd"
}

# shard_of N TYPE KEY...: the shard of each (TYPE, KEY), one a line,
# computed as recdelta-stream(5) specifies, independently of the C code.
shard_of() {
	node -e '
const c = require("crypto");
const [n, t, ...keys] = process.argv.slice(1);
for (const k of keys) {
	const d = c.createHash("sha256").update(Buffer.concat([Buffer.from(t),
	    Buffer.from([0]), Buffer.from(k)])).digest();
	console.log(String(d.readBigUInt64BE(0) % BigInt(n) + 1n));
}' "$@"
}

# state_of STORE: a store's records, without the mtime a write sets, sorted.
state_of() {
	recdelta-fetch "$1" | jq -cS 'del(.mtime)' | LC_ALL=C sort
}

# sum_counts: the "Created N, Updated N, Skipped N unchanged, Deleted N"
# lines of the input, summed into one such line.
sum_counts() {
	awk '/^Created [0-9]+, Updated/ {
		gsub(/,/, ""); c += $2; u += $4; s += $6; d += $9; n++ }
	    END { printf "%d: Created %d, Updated %d, Skipped %d unchanged, Deleted %d\n", n, c, u, s, d }'
}

# A local data set and an older remote: 60 Games and 12 Teams, of which
# 8 changed, 10 gone (orphans on the remote) and 10 new.
mkdata() {
	local i v
	for i in $(seq 1 60); do
		rec Game "g$i" "{\"n\":$i,\"day\":\"2024-01-$(printf %02d $((i % 10 + 1)))\"}"
	done > old.ndjson
	for i in $(seq 1 12); do
		rec Team "t$i" "{\"name\":\"T$i\"}"
	done >> old.ndjson
	{
		for i in $(seq 1 50); do
			v=$i
			[ "$i" -gt 8 ] || v=$((i * 100))
			rec Game "g$i" "{\"n\":$v,\"day\":\"2024-01-$(printf %02d $((i % 10 + 1)))\"}"
		done
		for i in $(seq 61 70); do
			rec Game "g$i" "{\"n\":$i,\"day\":\"2024-01-$(printf %02d $((i % 10 + 1)))\"}"
		done
		for i in $(seq 1 12); do
			rec Team "t$i" "{\"name\":\"T$i\"}"
		done
	} > new.ndjson
	recdelta-diff --local ndjson:old.ndjson --remote dir:old --allow-missing-remote |
	    recdelta-push --quiet dir:old > /dev/null 2>&1
}

@test "--shard: a malformed I/N, N < 1 or I out of range is a usage error (2) in every program and flow" {
	rec T a '{}' > a.ndjson
	for bad in 0/4 5/4 1/0 0/0 a/b 1/ /3 4 -1/3 +1/3 ' 1/3' 1/3x 1/1000001; do
		for p in fetch diff merge push checkpoint; do
			case $p in
			fetch) argv=(recdelta-fetch --shard "$bad" ndjson:a.ndjson) ;;
			diff|merge) argv=("recdelta-$p" --shard "$bad" --local ndjson:a.ndjson --remote ndjson:a.ndjson) ;;
			push) argv=(recdelta-push --shard "$bad" dir:t) ;;
			checkpoint) argv=(recdelta-checkpoint scope --shard "$bad" dir:t) ;;
			esac
			run -2 --separate-stderr "${argv[@]}"
			assert_equal "$output" ''
			[[ ${stderr%%$'\n'*} == "${argv[0]}: --shard: \"$bad\": expected I/N, shard I of N, 1 <= I <= N <= 1000000" ]] ||
			    fail "${argv[*]}: $stderr"
		done
		for flow in "diff-only -l ndjson:a.ndjson -r dir:t" \
		    "smart-sync -l ndjson:a.ndjson -r dir:t" \
		    "two-way-sync -l ndjson:a.ndjson -r dir:t" \
		    "historical-import --source ndjson:a.ndjson --target dir:t --from 2024-01-01 --to 2024-01-02 --window-field day"; do
			read -ra argv <<<"$flow"
			run -2 --separate-stderr recdelta "${argv[@]}" --shard "$bad"
			assert_equal "$output" ''
			[[ $stderr == *"--shard: \"$bad\": expected I/N"* ]] || fail "$flow: $stderr"
		done
	done
	# Nothing was made: no store, no state.
	[ ! -e t ] && [ ! -e .recdelta ]
}

@test "the shard of a record is SHA-256 of type, NUL, key: its first 8 bytes big-endian, mod N, plus one" {
	# The example of recdelta-stream(5).
	run -0 shard_of 4 Game g-0001
	assert_output 3
	long=$(printf 'k%.0s' $(seq 1 300))
	keys=(a b c 'quo"te' 'back\slash' é 日本 "$long" $(seq 1 40))
	for k in "${keys[@]}"; do
		jq -cn --arg k "$k" '{kind:"record",type:"Stadium",key:$k,fields:{k:$k}}'
	done > all.ndjson
	# A tombstone goes with its key; a line of another kind with none.
	jq -cn '{kind:"record",type:"Stadium",key:"gone",deleted:true}' >> all.ndjson
	echo '{"kind":"cursor","source":"x","name":"n","value":"v"}' >> all.ndjson
	keys+=(gone)
	mapfile -t want < <(shard_of 3 Stadium "${keys[@]}")
	# (Not $i: bats's run sets it.)
	for sh in 1 2 3; do
		run -0 --separate-stderr recdelta-fetch --shard "$sh/3" ndjson:all.ndjson
		got=$(printf '%s\n' "$output" | jq -r 'select(.kind == "record") | .key')
		expect=$(for j in "${!keys[@]}"; do
			[ "${want[j]}" != "$sh" ] || printf '%s\n' "${keys[j]}"
		done)
		assert_equal "$got" "$expect"
		assert_equal "$(printf '%s\n' "$output" | grep -c '"kind":"cursor"')" 1
	done
	# Every shard holds some of these keys, and 1/1 is all of them.
	assert_equal "$(printf '%s\n' "${want[@]}" | sort -u | tr '\n' ' ')" '1 2 3 '
	run -0 recdelta-fetch --shard 1/1 ndjson:all.ndjson
	assert_output "$(cat all.ndjson)"
	# The type is part of the hash: ("Ta", "b") is not ("T", "ab").
	run -0 shard_of 1000000 T ab
	one=$output
	run -0 shard_of 1000000 Ta b
	[ "$output" != "$one" ]
}

@test "diff and diff-only: the recipes of recdelta-flows(7) add up to the unsharded run, each orphan within its shard" {
	mkdata
	export N=4 SRC=ndjson:new.ndjson TGT=dir:old
	run -0 recdelta-diff --local "$SRC" --remote "$TGT"
	whole=$(printf '%s\n' "$output" | LC_ALL=C sort)
	assert_equal "$(printf '%s\n' "$whole" | grep -c '"op":"delete"')" 10
	run_recipe recdelta-diff
	assert_success
	assert_equal "$stderr" ''
	assert_equal "$(LC_ALL=C sort changes.ndjson)" "$whole"
	# Each shard on its own: only its keys, and its deletes are remote
	# records of its shard that its local records lack.
	for sh in 1 2 3 4; do
		recdelta-diff --all --shard "$sh/$N" --local "$SRC" --remote "$TGT" |
		    jq -r '[.type, .key] | @tsv' > "keys$sh"
		[ -s "keys$sh" ] || fail "shard $sh: no line"
		for t in Game Team; do
			mapfile -t got < <(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "keys$sh" |
			    xargs -r shard_of "$N" "$t" | sort -u)
			[ "${#got[@]}" -eq 0 ] || assert_equal "${got[*]}" "$sh"
		done
	done
	# --all: every key of either side in exactly one shard.
	assert_equal "$(cat keys1 keys2 keys3 keys4 | LC_ALL=C sort | uniq -d)" ''
	assert_equal "$(cat keys1 keys2 keys3 keys4 | wc -l)" 82
	# diff-only: the per-type counts of the shards sum to the unsharded ones.
	run -0 recdelta diff-only --local "$SRC" --remote "$TGT"
	assert_output $'Games: 42 unchanged, 10 new, 8 updated, 10 deleted\nTeams: 12 unchanged, 0 new, 0 updated, 0 deleted'
	run_recipe "recdelta diff-only"
	assert_success
	assert_equal "$(printf '%s\n' "$output" | awk -F'[:,] *' '
	    { u[$1] += $2; n[$1] += $3; p[$1] += $4; d[$1] += $5 }
	    END { for (t in u) printf "%s: %d unchanged, %d new, %d updated, %d deleted\n", t, u[t], n[t], p[t], d[t] }' |
	    LC_ALL=C sort)" $'Games: 42 unchanged, 10 new, 8 updated, 10 deleted\nTeams: 12 unchanged, 0 new, 0 updated, 0 deleted'
}

@test "merge --shard: the shards' change and conflict lines add up to the unsharded merge" {
	mkdata
	# The remote edited some records as well, one of them (g3) also edited
	# locally: a conflict.
	jq -c 'if .key == "g3" or .key == "g20" or .key == "t5" then .fields.n = -1 else . end' \
	    old.ndjson > remote.ndjson
	run -0 recdelta-merge -a --base ndjson:old.ndjson --local ndjson:new.ndjson \
	    --remote ndjson:remote.ndjson
	whole=$(printf '%s\n' "$output" | LC_ALL=C sort)
	assert_equal "$(printf '%s\n' "$whole" | grep -c '"kind":"conflict"')" 1
	for i in 1 2 3; do
		recdelta-merge -a --shard "$i/3" --base ndjson:old.ndjson \
		    --local ndjson:new.ndjson --remote ndjson:remote.ndjson
	done > shards.ndjson
	assert_equal "$(LC_ALL=C sort shards.ndjson)" "$whole"
}

@test "push --shard refuses a change outside its shard: status 3, the line named, nothing written" {
	mkdata
	before=$(tree_digest old)
	recdelta-diff --local ndjson:new.ndjson --remote dir:old > plan.ndjson
	# The plan of shard 1 of 2 passes; the whole plan holds shard 2's too.
	first=$(awk '/"kind":"change"/ { print NR; exit }' plan.ndjson)
	t=$(sed -n "${first}p" plan.ndjson | jq -r .type)
	k=$(sed -n "${first}p" plan.ndjson | jq -r .key)
	other=$(( $(shard_of 2 "$t" "$k") % 2 + 1 ))
	run -3 --separate-stderr recdelta-push --shard "$other/2" dir:old < plan.ndjson
	assert_equal "$output" ''
	assert_equal "$stderr" "recdelta-push: <stdin>:$first: type \"$t\" key \"$k\": outside shard $other/2 (--shard)"
	assert_equal "$(tree_digest old)" "$before"
	# Its own shard's plan is pushed.
	recdelta-diff --shard "$other/2" --local ndjson:new.ndjson --remote dir:old > mine.ndjson
	run -0 --separate-stderr recdelta-push --quiet --shard "$other/2" dir:old < mine.ndjson
	assert_equal "$(grep -c '"status":"ok"' <<<"$output")" "$(grep -c '"op":"\(create\|update\)"' mine.ndjson)"
}

@test "push --shard: a --max-delete percentage is of the shard's records in the target" {
	mkdata
	# Shard 1 of 2's deletes, and what 50% of its records and of all
	# records allow.
	recdelta-diff --shard 1/2 --local ndjson:new.ndjson --remote dir:old > plan.ndjson
	nd=$(grep -c '"op":"delete"' plan.ndjson)
	mine=$(recdelta-fetch --shard 1/2 -t Game dir:old | grep -c '"kind":"record"')
	[ "$nd" -gt 0 ] && [ "$mine" -lt 72 ]
	# A budget under the deletes, counted on the shard's Games (the type
	# the changes name), refuses; on all 60 Games it would have allowed them.
	pct=$(( (nd * 100 - 1) / mine ))
	[ $(( 60 * pct / 100 )) -ge "$nd" ] || fail "the data do not separate the two counts"
	run -5 --separate-stderr recdelta-push --shard 1/2 --delete-orphans --max-delete "$pct%" dir:old < plan.ndjson
	assert_equal "$output" ''
	assert_equal "${stderr%%$'\n'*}" "recdelta-push: refused: $nd deletes exceed the budget of $(( mine * pct / 100 )) (--max-delete $pct%)"
}

@test "smart-sync: the recipe of recdelta-flows(7) leaves the remote as one run does, its counts summed, each shard in its own scope" {
	mkdata
	cp -a old one
	run -0 --separate-stderr recdelta smart-sync --local ndjson:new.ndjson --remote dir:one --delete-orphans
	assert_equal "$stderr" 'Created 10, Updated 8, Skipped 54 unchanged, Deleted 10, Conflicts 0'
	export N=4 SRC=ndjson:new.ndjson TGT=dir:old
	run_recipe "recdelta smart-sync"
	assert_success
	assert_equal "$output" ''
	assert_equal "$(printf '%s\n' "$stderr" | sum_counts)" '4: Created 10, Updated 8, Skipped 54 unchanged, Deleted 10'
	assert_equal "$(state_of dir:old)" "$(state_of dir:one)"
	# Each shard has a scope, a state and a base of its own: together the
	# base is the remote's records.
	for sh in 1 2 3 4; do
		run -0 recdelta-checkpoint scope --shard "$sh/4" "$TGT"
		assert_equal "${lines[0]}" "dir:$PWD/old#shard=$sh/4"
		[ -f "${lines[1]}" ] || fail "no state ${lines[1]}"
		RECDELTA_STATE=${lines[1]} recdelta-checkpoint base >> bases.ndjson
	done
	jq -r '[.type, .key] | @tsv' bases.ndjson | LC_ALL=C sort > bases
	assert_equal "$(cat bases)" "$(recdelta-fetch dir:old | jq -r 'select(.deleted | not) | [.type, .key] | @tsv' | LC_ALL=C sort)"
	assert_equal "$(wc -l < bases)" 72
	# Again: every shard finds nothing to do, and writes nothing.
	before=$(tree_digest old)
	run_recipe "recdelta smart-sync"
	assert_success
	assert_equal "$(printf '%s\n' "$stderr" | sum_counts)" '4: Created 0, Updated 0, Skipped 72 unchanged, Deleted 0'
	assert_equal "$(tree_digest old)" "$before"
}

@test "smart-sync --shard: an empty shard over an empty shard base is no refusal; a shard that lost its records is refused (5)" {
	# Two records and 16 shards: most shards are empty, and stay so.
	rec T a '{"n":1}' > two.ndjson
	rec T b '{"n":2}' >> two.ndjson
	for i in $(seq 1 16); do
		recdelta smart-sync -q --shard "$i/16" --local ndjson:two.ndjson --remote dir:r --delete-orphans ||
		    fail "shard $i/16 failed"
	done
	run -0 recdelta smart-sync -q --shard "$(shard_of 16 T c)/16" --local ndjson:two.ndjson --remote dir:r --delete-orphans
	assert_equal "$(recdelta-fetch dir:r | jq -r .key | sort | tr '\n' ' ')" 'a b '
	# The local data lose a: its shard's base holds it, so that shard is
	# refused; the others are not.
	rec T b '{"n":2}' > one.ndjson
	sa=$(shard_of 16 T a)
	before=$(tree_digest r)
	run -5 --separate-stderr recdelta smart-sync --shard "$sa/16" --local ndjson:one.ndjson --remote dir:r --delete-orphans
	assert_equal "${stderr%%$'\n'*}" 'recdelta-smart-sync: refused: ndjson:one.ndjson holds no record, where the base snapshot of the last sync holds 1'
	assert_equal "$(tree_digest r)" "$before"
	[ "$sa" != "$(shard_of 16 T b)" ] || skip "a and b share a shard"
	run -0 --separate-stderr recdelta smart-sync --shard "$(shard_of 16 T b)/16" --local ndjson:one.ndjson --remote dir:r --delete-orphans
	assert_equal "$stderr" 'Created 0, Updated 0, Skipped 1 unchanged, Deleted 0, Conflicts 0'
}

@test "two-way-sync --shard: the shards together leave both sides as one run does" {
	mkdata
	jq -c 'if .key == "g20" or .key == "t5" then .fields.name = "remote" else . end' \
	    old.ndjson > remote.ndjson
	for d in a b; do
		cp new.ndjson "local-$d.ndjson"
		recdelta-diff --local ndjson:remote.ndjson --remote "dir:remote-$d" --allow-missing-remote |
		    recdelta-push --quiet "dir:remote-$d" > /dev/null 2>&1
	done
	# The first run has no base: both sides' records are merged as they are.
	run -0 --separate-stderr recdelta two-way-sync -q --no-delete --local ndjson:local-a.ndjson --remote dir:remote-a
	for i in 1 2 3; do
		recdelta two-way-sync -q --no-delete --shard "$i/3" --local ndjson:local-b.ndjson --remote dir:remote-b ||
		    fail "shard $i/3 failed"
	done
	assert_equal "$(state_of dir:remote-b)" "$(state_of dir:remote-a)"
	assert_equal "$(state_of ndjson:local-b.ndjson)" "$(state_of ndjson:local-a.ndjson)"
}

@test "historical-import: the recipe of recdelta-flows(7) imports what one run imports, each shard with its own windows" {
	mkdata
	run -0 --separate-stderr recdelta historical-import -q --source ndjson:new.ndjson --target dir:one \
	    -t Game --from 2024-01-01 --to 2024-01-09 --window-field day
	export N=3 SRC=ndjson:new.ndjson TGT=dir:many FROM=2024-01-01 TO=2024-01-09 FIELD=day
	run_recipe "recdelta historical-import"
	assert_success
	assert_equal "$output" ''
	assert_equal "$(state_of dir:many)" "$(state_of dir:one)"
	# Both days are included; the games of 2024-01-10 are not imported.
	assert_equal "$(recdelta-fetch dir:many | grep -c '"kind":"record"')" 54
	for sh in 1 2 3; do
		run -0 recdelta-checkpoint scope --source "$SRC" --shard "$sh/3" "$TGT"
		RECDELTA_STATE=${lines[1]} run -0 recdelta-checkpoint windows coverage --json
		[[ $output == *'"done":9,'* ]] || fail "shard $sh: $output"
	done
}

@test "one state database: parallel writers wait for each other; two shards given one --state are refused" {
	# 32 writers at once on a state not made yet: every one commits.
	run -0 parallel --will-cite -j 16 recdelta-checkpoint --state one.db cursor set c{} v{} ::: $(seq 32)
	assert_equal "$(sqlite3 one.db 'select count(*) from cursors')" 32
	assert_equal "$(sqlite3 one.db 'pragma journal_mode')" wal
	# A state belongs to one scope: a second shard is refused, writing
	# nothing.
	mkdata
	run -0 --separate-stderr recdelta smart-sync -q --shard 1/2 --state s.db --local ndjson:new.ndjson --remote dir:old
	before=$(tree_digest old)
	run -5 --separate-stderr recdelta smart-sync -q --shard 2/2 --state s.db --local ndjson:new.ndjson --remote dir:old
	assert_equal "${stderr%%$'\n'*}" "recdelta-checkpoint: refused: the state s.db belongs to scope \"dir:$PWD/old#shard=1/2\", not \"dir:$PWD/old#shard=2/2\""
	assert_equal "$(tree_digest old)" "$before"
}

@test "two-way-sync --shard: a side whose shard lost its records is refused (5); an empty shard over an empty base is not" {
	rec T a '{"n":1}' > l.ndjson
	rec T b '{"n":2}' >> l.ndjson
	sa=$(shard_of 8 T a) sb=$(shard_of 8 T b)
	[ "$sa" != "$sb" ] || fail "a and b share a shard"
	for s in $(seq 1 8); do
		recdelta two-way-sync -q --shard "$s/8" --local ndjson:l.ndjson --remote dir:r ||
		    fail "shard $s/8 failed"
	done
	assert_equal "$(recdelta-fetch dir:r | jq -r .key | sort | tr '\n' ' ')" 'a b '
	rec T b '{"n":2}' > l.ndjson
	before=$(tree_digest r)
	run -5 --separate-stderr recdelta two-way-sync --shard "$sa/8" --local ndjson:l.ndjson --remote dir:r
	assert_equal "${stderr%%$'\n'*}" 'recdelta-two-way-sync: refused: ndjson:l.ndjson holds no record, where the base of the last sync holds 1'
	assert_equal "$(tree_digest r)" "$before"
	run -0 --separate-stderr recdelta two-way-sync -q --shard "$sb/8" --local ndjson:l.ndjson --remote dir:r
	assert_equal "$(tree_digest r)" "$before"
}

@test "smart-sync --shard: a full run keeps the change feed's cursor in its shard's state; the shard's --incremental run reads from it and sees what another client changed in its shard" {
	for i in $(seq 1 8); do rec T "k$i" "{\"n\":$i}"; done > l.ndjson
	mkdir r
	for s in 1 2; do
		run -0 --separate-stderr recdelta smart-sync -q --shard "$s/2" --state "s$s.db" \
		    -l ndjson:l.ndjson -r dir:r --log "full$s.log"
		run -0 recdelta-checkpoint --state "s$s.db" cursor get feed
		eval "cursor$s=\$output"
		assert_equal "$(jq -r .msg "full$s.log" | grep '^full: ')" "full: the change feed stands at $output"
	done
	# Shard 1 ran first, on an empty store; shard 2 after its writes.
	assert_equal "$cursor1 $cursor2" "0 1"
	# Each shard's base holds its records alone.
	for s in 1 2; do
		assert_equal "$(recdelta-checkpoint --state "s$s.db" base | jq -r .key | tr '\n' ' ')" \
		    "$(recdelta-fetch --shard "$s/2" ndjson:l.ndjson | jq -r .key | LC_ALL=C sort | tr '\n' ' ')"
	done
	# Another client sets every n to 0; each shard's incremental run
	# overwrites the edits of its shard, read from its cursor.
	recdelta-fetch dir:r | jq -c 'select(.kind == "record") |
	    {kind: "change", op: "update", type, key, rev, fields: {n: 0}, changed: ["n"]}' |
	    recdelta-push -q dir:r > other.ndjson
	total=0
	for s in 1 2; do
		n=$(recdelta-fetch --shard "$s/2" ndjson:l.ndjson | wc -l)
		total=$((total + n))
		run -0 --separate-stderr recdelta smart-sync --incremental --shard "$s/2" --state "s$s.db" \
		    -l ndjson:l.ndjson -r dir:r --log "incr$s.log"
		assert_equal "$stderr" "Created 0, Updated $n, Skipped 0 unchanged, Deleted 0, Conflicts 0
recdelta-push: overwrote $n remote edit$([ "$n" -eq 1 ] || echo s) (see --log)"
		assert_equal "$(jq -r .msg "incr$s.log" | grep '^incremental: ')" \
		    "incremental: reading the change feed from $(eval "echo \$cursor$s")"
	done
	assert_equal "$total" 8
	assert_equal "$(recdelta-fetch dir:r | jq -c 'select(.kind == "record") | {type, key, fields}' | LC_ALL=C sort)" \
	    "$(jq -c '{type, key, fields}' l.ndjson | LC_ALL=C sort)"
}
