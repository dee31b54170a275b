# Two stores edited at random between two-way syncs, and a model of what a
# sync must make of them.  Load after helpers/common (and helpers/cloudkit
# for a cloudkit: side).
#
#   tw_init LOCALKIND REMOTEKIND   the two stores in $PWD, empty; the model
#   tw_edit_round SEED             random edits on both sides, applied, and
#                                  the model's expectation of the next sync
#   tw_check                       both sides equal the expectation, and
#                                  the run's conflicts are those expected
#
# Records are of type Item with three fields: a (an integer), b (a string)
# and c (an integer), all always set, keys k0 .. k11: few keys, so that both
# sides often touch the same record.  The model keeps, per key, the values
# both sides held after the last sync (TW_BASE), each side's current values
# (TW_L, TW_R; "-" or unset when it has no record), and computes the merge
# of recdelta-merge(1) with --prefer TW_PREFER: per field, the side that
# changed it since the base; both changed differently, a conflict the
# preferred side wins; deleted on one side and changed on the other, a
# conflict the changed record wins unless the deleting side is preferred.
# Each side is sqlite: (edited with SQL, as other programs would, moving no
# rev), dir:, webdav: or cloudkit: (edited through recdelta-push, another
# writer).

declare -gA TW_BASE TW_L TW_R TW_EXP
TW_KEYS=12
TW_PREFER=local
TW_CONFLICTS=	# the expected conflicts of the next sync, sorted lines

# tw_word KIND: the store word of a side of that kind in $PWD.
tw_word() {
	case $1 in
	sqlite) printf 'sqlite:%s/l.db?table=items&key=id&type=Item' "$PWD" ;;
	dir) printf 'dir:%s/%s' "$PWD" "${2:-store}" ;;
	cloudkit) printf 'cloudkit:%s/%s/%s' "$CK_CONTAINER" "$CK_ENVIRONMENT" "$CK_DATABASE" ;;
	webdav) printf 'webdav:%s/remote/' "$DAV_URL" ;;
	esac
}

tw_init() {
	TW_LKIND=$1 TW_RKIND=$2
	TW_LOCAL=$(tw_word "$1" local) TW_REMOTE=$(tw_word "$2" remote)
	TW_BASE=() TW_L=() TW_R=() TW_EXP=()
	# The local side exists, empty; the remote is made by its first write.
	case $1 in
	sqlite) sqlite3 l.db 'CREATE TABLE items(id TEXT PRIMARY KEY, a INTEGER, b TEXT, c INTEGER)' ;;
	dir) mkdir local ;;
	esac
	# An empty first sync makes each side exist.
	tw_sync || return 1
}

# tw_sync [OPTION]...: the flow between the two sides.
tw_sync() {
	recdelta two-way-sync -q -t Item --prefer "$TW_PREFER" \
	    -l "$TW_LOCAL" -r "$TW_REMOTE" --allow-empty "$@"
}

tw_fields() {
	local v=($1)
	printf '{"a":%s,"b":"%s","c":%s}' "${v[0]}" "${v[1]}" "${v[2]}"
}

# tw_apply SIDE KIND WORD: the side's edits of this round (in TW_OPS_SIDE,
# lines "KEY OLD|- NEW|-") applied to its store.
tw_apply() {
	local side=$1 kind=$2 word=$3 key old new v
	local -a sql=()
	: > "edits.$side"
	while read -r key old new; do
		[ -n "$key" ] || continue
		if [ "$kind" = sqlite ]; then
			if [ "$new" = - ]; then
				sql+=("DELETE FROM items WHERE id = '$key';")
			else
				v=(${new//,/ })
				if [ "$old" = - ]; then
					sql+=("INSERT INTO items(id, a, b, c) VALUES ('$key', ${v[0]}, '${v[1]}', ${v[2]});")
				else
					sql+=("UPDATE items SET a = ${v[0]}, b = '${v[1]}', c = ${v[2]} WHERE id = '$key';")
				fi
			fi
			continue
		fi
		printf '%s %s %s\n' "$key" "$old" "$new" >> "edits.$side"
	done <<< "$4"
	if [ "$kind" = sqlite ]; then
		[ ${#sql[@]} -eq 0 ] || sqlite3 l.db "${sql[@]}" || return 1
		return 0
	fi
	[ -s "edits.$side" ] || return 0
	# Another writer: the record's current rev from a fetch, then a push.
	if { [ "$kind" = dir ] && [ ! -e "$side" ]; } ||
	    { [ "$kind" = webdav ] && [ ! -e "$DAV_ROOT/remote" ]; }; then
		: > "cur.$side"	# made by the first write
	else
		recdelta-fetch -t Item "$word" > "cur.$side" || return 1
	fi
	while read -r key old new; do
		local rev
		rev=$(jq -r --arg k "$key" 'select(.kind == "record" and .key == $k and .deleted != true) | .rev' "cur.$side")
		if [ "$new" = - ]; then
			printf '{"kind":"change","op":"delete","type":"Item","key":"%s","rev":"%s"}\n' "$key" "$rev"
		elif [ "$old" = - ]; then
			printf '{"kind":"change","op":"create","type":"Item","key":"%s","fields":%s}\n' \
			    "$key" "$(tw_fields "${new//,/ }")"
		else
			printf '{"kind":"change","op":"update","type":"Item","key":"%s","rev":"%s","fields":%s}\n' \
			    "$key" "$rev" "$(tw_fields "${new//,/ }")"
		fi
	done < "edits.$side" > "push.$side"
	recdelta-push -q --delete-orphans --retries 0 "$word" < "push.$side" > "res.$side" || return 1
	if grep -v '"status":"ok"' "res.$side"; then
		echo "tw_apply: the other writer's push failed" >&2
		return 1
	fi
}

# tw_edit_round SEED: 1 to 5 random edits, each on a random side: create a
# record the side lacks, change one field of a record it has (3 in 4), or
# delete it; then what the sync must make of them.
tw_edit_round() {
	local n i side key old new f v
	local -a vals
	local lops= rops=
	local -A touched=()
	RANDOM=$1
	n=$((1 + RANDOM % 5))
	for ((i = 0; i < n; i++)); do
		key=k$((RANDOM % TW_KEYS))
		if ((RANDOM % 2)); then side=L; else side=R; fi
		# One edit of a record per side and round: a push takes one
		# change of a record at a time.
		[ -z "${touched[$side$key]:-}" ] || continue
		touched[$side$key]=1
		if [ "$side" = L ]; then old=${TW_L[$key]:--}; else old=${TW_R[$key]:--}; fi
		if [ "$old" = - ]; then
			new="$RANDOM,s$RANDOM,$RANDOM"
		elif ((RANDOM % 4 == 0)); then
			new=-
		else
			vals=(${old//,/ })
			f=$((RANDOM % 3))
			case $f in
			1) vals[1]=s$RANDOM ;;
			*) vals[$f]=$RANDOM ;;
			esac
			new="${vals[0]},${vals[1]},${vals[2]}"
		fi
		if [ "$side" = L ]; then
			TW_L[$key]=$new
			lops+="$key $old $new"$'\n'
		else
			TW_R[$key]=$new
			rops+="$key $old $new"$'\n'
		fi
	done
	tw_apply local "$TW_LKIND" "$TW_LOCAL" "$lops" || return 1
	tw_apply remote "$TW_RKIND" "$TW_REMOTE" "$rops" || return 1
	tw_expect
}

# tw_expect: TW_EXP, what both sides must hold after the sync, and
# TW_CONFLICTS, the conflicts it must record: "KEY FIELD LOSER" lines, FIELD
# "-" and LOSER the losing record's values or "-" for a delete-vs-edit.
tw_expect() {
	local k b l r f winner m
	local -a bv lv rv mv
	local names=(a b c)
	TW_EXP=()
	TW_CONFLICTS=
	for ((i = 0; i < TW_KEYS; i++)); do
		k=k$i
		b=${TW_BASE[$k]:--} l=${TW_L[$k]:--} r=${TW_R[$k]:--}
		if [ "$l" = - ] && [ "$r" = - ]; then
			continue
		elif [ "$l" = - ] || [ "$r" = - ]; then
			# On one side only: created there, or deleted on the
			# other.
			local have=$l deleter=local
			[ "$l" != - ] || { have=$r; }
			[ "$l" != - ] && deleter=remote
			if [ "$b" = - ]; then
				TW_EXP[$k]=$have
			elif [ "$have" = "$b" ]; then
				:	# deleted, unchanged elsewhere: gone
			else
				if [ "$TW_PREFER" = "$deleter" ]; then
					TW_CONFLICTS+="$k - ${have}"$'\n'
				else
					TW_EXP[$k]=$have
					TW_CONFLICTS+="$k - -"$'\n'
				fi
			fi
			continue
		fi
		[ "$b" != - ] || b=",,"
		bv=(${b//,/ }) lv=(${l//,/ }) rv=(${r//,/ })
		[ "$b" != ",," ] || bv=("" "" "")
		mv=()
		for f in 0 1 2; do
			if [ "${lv[$f]}" = "${rv[$f]}" ]; then
				mv[$f]=${lv[$f]}
			elif [ "${lv[$f]}" = "${bv[$f]}" ]; then
				mv[$f]=${rv[$f]}
			elif [ "${rv[$f]}" = "${bv[$f]}" ]; then
				mv[$f]=${lv[$f]}
			elif [ "$TW_PREFER" = local ]; then
				mv[$f]=${lv[$f]}
				TW_CONFLICTS+="$k ${names[$f]} ${rv[$f]}"$'\n'
			else
				mv[$f]=${rv[$f]}
				TW_CONFLICTS+="$k ${names[$f]} ${lv[$f]}"$'\n'
			fi
		done
		TW_EXP[$k]="${mv[0]},${mv[1]},${mv[2]}"
	done
	TW_CONFLICTS=$(printf '%s' "$TW_CONFLICTS" | LC_ALL=C sort)
}

# tw_expected: the expectation as the lines tw_live prints.
tw_expected() {
	local k v
	for k in "${!TW_EXP[@]}"; do
		v=(${TW_EXP[$k]//,/ })
		printf '["%s",%s,"%s",%s]\n' "$k" "${v[0]}" "${v[1]}" "${v[2]}"
	done | LC_ALL=C sort
}

# tw_live WORD: a store's live records, one line each, sorted.
tw_live() {
	recdelta-fetch -t Item "$1" |
	    jq -c 'select(.kind == "record" and .deleted != true) | [.key, .fields.a, .fields.b, .fields.c]' |
	    LC_ALL=C sort
}

# tw_conflicts: the conflicts recorded and not yet reviewed, as tw_expect
# writes them; then marked reviewed, so that the next round sees its own.
tw_conflicts() {
	recdelta-checkpoint conflicts --json |
	    jq -r '[.key, (.field // "-"),
	        (if .winner == "local" then .remote else .local end |
	         if . == null then "-" elif type == "object" then "\(.a),\(.b),\(.c)" else tostring end)] | join(" ")' |
	    LC_ALL=C sort
	recdelta-checkpoint conflicts review --all > /dev/null
}

# tw_accept: after a sync that was checked, the model's sides and base are
# the expectation.
tw_accept() {
	local k
	TW_BASE=() TW_L=() TW_R=()
	for k in "${!TW_EXP[@]}"; do
		TW_BASE[$k]=${TW_EXP[$k]}
		TW_L[$k]=${TW_EXP[$k]}
		TW_R[$k]=${TW_EXP[$k]}
	done
}

# tw_digest: both stores' bytes (sqlite: its dump; dir: its files;
# cloudkit: the emulator's records and write count).
tw_digest() {
	local side kind
	for side in local remote; do
		if [ "$side" = local ]; then kind=$TW_LKIND; else kind=$TW_RKIND; fi
		case $kind in
		sqlite) sqlite3 l.db .dump ;;
		dir) tree_digest "$side" ;;
		webdav) tree_digest "$DAV_ROOT/remote" ;;
		cloudkit) ck_control GET state | jq -cS '[.dbs[][] | {records, tombstones}]'
			ck_control GET 'log?format=ndjson' |
			    jq -s 'map(select(.op | strings | endswith("/modify"))) | length' ;;
		esac
	done | sha256sum | cut -d' ' -f1
}
