# Build dir: stores for tests, in the layout of protocols/webdav.md section 4,
# independently of lib/store_dir.c, so a test of the reader is not a test of
# the reader against itself.
#
#   make_dir_store DIR < records.ndjson
#
# reads record lines (other kinds are ignored) and writes
#   DIR/meta.json                       the index, canonical JSON
#   DIR/enc(TYPE)/enc(KEY)~V.json       one entity file per live record
# V is the record's "rev" (default 1); a record with "deleted":true becomes
# a tombstone entry in meta.json and no file.  Entity files hold canonical
# JSON (sorted keys, no spaces) {"fields":..,"key":..,"type":..} and a
# newline; jq writes them, so keep to values jq does not alter (no numbers
# beyond 2^53, no 1.0).  Every entry's mtime is STORE_MTIME.

STORE_MTIME=2026-01-01T00:00:00Z

# enc STRING: print the file-name form of a type or key: [A-Za-z0-9_-] and
# a non-leading '.' stay, every other byte of the UTF-8 form is %XX
# (uppercase hex).
enc() {
	local hex ch out= i=0

	for hex in $(printf '%s' "$1" | od -An -v -tx1); do
		case $hex in
		3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 5f | 2d)
			printf -v ch "\\x$hex"
			out+=$ch
			;;
		2e)
			if [ "$i" -gt 0 ]; then out+=.; else out+=%2E; fi
			;;
		*)
			out+=%${hex^^}
			;;
		esac
		i=$((i + 1))
	done
	printf '%s' "$out"
}

# entity_path TYPE KEY V: the path of an entity file relative to the store.
entity_path() {
	printf '%s/%s~%s.json' "$(enc "$1")" "$(enc "$2")" "$3"
}

make_dir_store() {
	local dir=$1 type key v deleted content tjson kjson path sha entries

	mkdir -p -- "$dir" || return 1
	entries=$(mktemp) || return 1
	# One jq pass: per record, NUL-separated type, key, v, deleted, the
	# JSON forms of type and key, and the entity file's content.
	while IFS= read -r -d '' type && IFS= read -r -d '' key &&
	    IFS= read -r -d '' v && IFS= read -r -d '' deleted &&
	    IFS= read -r -d '' tjson && IFS= read -r -d '' kjson &&
	    IFS= read -r -d '' content; do
		if [ "$deleted" = 1 ]; then
			printf '{"type":%s,"key":%s,"v":%s,"deleted":true}\n' \
			    "$tjson" "$kjson" "$v" >> "$entries"
			continue
		fi
		path=$(entity_path "$type" "$key" "$v")
		mkdir -p -- "$dir/${path%/*}" || return 1
		printf '%s\n' "$content" > "$dir/$path" || return 1
		sha=$(sha256sum < "$dir/$path" | cut -d' ' -f1)
		printf '{"type":%s,"key":%s,"v":%s,"sha256":"%s"}\n' \
		    "$tjson" "$kjson" "$v" "$sha" >> "$entries"
	done < <(jq -j '
		def canon: if type == "object" then
			to_entries | sort_by(.key) | map(.value |= canon) | from_entries
		    elif type == "array" then map(canon) else . end;
		select(.kind == "record") |
		[.type, .key, ((.rev // "1") | tostring),
		 (if .deleted == true then "1" else "0" end),
		 (.type | tojson), (.key | tojson),
		 ({fields: (.fields // {}), key, type} | canon | tojson)] |
		map(. + "\u0000") | add')
	jq -cS -s --arg mtime "$STORE_MTIME" '
		reduce .[] as $e ({};
		    .[$e.type][$e.key] = ({v: $e.v, mtime: $mtime} +
			(if $e.deleted then {deleted: true}
			 else {sha256: $e.sha256} end))) |
		{format: "recdelta-store/1", generation: 1, entities: .}' \
	    "$entries" > "$dir/meta.json"
	local rc=$?
	rm -f -- "$entries"
	return $rc
}
