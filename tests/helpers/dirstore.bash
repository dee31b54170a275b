# Build dir: stores for tests, in the layout of protocols/webdav.md section 4,
# independently of lib/store_layout.c and lib/store_dir.c, so a test of the
# reader is not a test of the reader against itself.
#
#   make_dir_store DIR < records.ndjson
#
# reads record lines (other kinds are ignored) and writes
#   DIR/meta.json                       the index, canonical JSON
#   DIR/enc(TYPE)/enc(KEY)~V.json       one entity file per live record
# V is the record's "rev" (default 1); a record with "deleted":true becomes
# a tombstone entry in meta.json and no file.  An entry's mtime is the
# record's "mtime", or STORE_MTIME.  Entity files hold canonical JSON (sorted
# keys, no spaces) {"fields":..,"key":..,"type":..} and a newline; jq writes
# them, so keep to values jq does not alter (no integers beyond 2^53, no 1.0).
#
# Also: enc STRING (the file-name form of a type or key), entity_path TYPE
# KEY V (an entity file's path in the store), reseal DIR TYPE KEY V (put
# the sha256 of an entity file a test changed back into meta.json) and
# store_entities DIR (the index's entries, whatever its layout) and
# bucket_files DIR (the bucket files meta.json names).
#
# make_dir_store writes the recdelta-store/1 layout, the whole index in
# meta.json, which readers still read and the first write turns into
# recdelta-store/2: meta.json names the bucket files meta.idx/I~G.json.
#
# A fixed number of processes whatever the number of records: forks are
# what makes a helper like this slow.

STORE_MTIME=2026-01-01T00:00:00Z

# enc() for awk, run with LC_ALL=C so that a character is a byte:
# [A-Za-z0-9_-] and a non-leading '.' stay, every other byte becomes %XX.
# unjson() turns a JSON string as jq writes it (non-ASCII raw, control
# characters escaped) back into its bytes.
_DIRSTORE_AWK='
function init(   i) {
	for (i = 1; i < 256; i++)
		ORD[sprintf("%c", i)] = i
}
function enc(s,   i, c, out) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c ~ /^[A-Za-z0-9_-]$/ || (c == "." && i > 1))
			out = out c
		else
			out = out sprintf("%%%02X", ORD[c])
	}
	return out
}
function utf8(cp) {
	if (cp < 128)
		return sprintf("%c", cp)
	if (cp < 2048)
		return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
	return sprintf("%c%c%c", 224 + int(cp / 4096), \
	    128 + int(cp / 64) % 64, 128 + cp % 64)
}
function hexval(h,   i, v) {
	v = 0
	for (i = 1; i <= length(h); i++)
		v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
	return v
}
function unjson(s,   out, i, c, e) {
	s = substr(s, 2, length(s) - 2)
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c != "\\") {
			out = out c
			continue
		}
		e = substr(s, ++i, 1)
		if (e == "u") {
			out = out utf8(hexval(substr(s, i + 1, 4)))
			i += 4
		} else if (e == "n") out = out "\n"
		else if (e == "t") out = out "\t"
		else if (e == "r") out = out "\r"
		else if (e == "b") out = out "\b"
		else if (e == "f") out = out "\f"
		else out = out e
	}
	return out
}
'

# enc STRING: print the file-name form of a type or key.
enc() {
	DIRSTORE_S=$1 LC_ALL=C awk "$_DIRSTORE_AWK"'
	    BEGIN { init(); printf "%s", enc(ENVIRON["DIRSTORE_S"]) }'
}

# entity_path TYPE KEY V: the path of an entity file relative to the store.
entity_path() {
	printf '%s/%s~%s.json' "$(enc "$1")" "$(enc "$2")" "$3"
}

# reseal DIR TYPE KEY V: write the sha256 of the entity file into meta.json
# again, after a test changed the file on purpose.
reseal() {
	local sha
	sha=$(sha256sum < "$1/$(entity_path "$2" "$3" "$4")" | cut -d' ' -f1)
	jq -cS --arg t "$2" --arg k "$3" --arg s "$sha" \
	    '.entities[$t][$k].sha256 = $s' "$1/meta.json" > "$1/meta.json.new" &&
	    mv "$1/meta.json.new" "$1/meta.json"
}

# store_entities DIR: the entries of the store's index as one JSON object
# {TYPE:{KEY:ENTRY}}, sorted: meta.json's "entities" (recdelta-store/1), or
# those of the bucket files meta.json names (recdelta-store/2).
store_entities() {
	if jq -e '.format == "recdelta-store/1"' "$1/meta.json" > /dev/null; then
		jq -cS .entities "$1/meta.json"
		return
	fi
	jq -r '.buckets | to_entries[] | select(.value > 0) |
	    "\(.key)~\(.value).json"' "$1/meta.json" |
	    (cd "$1/meta.idx" && xargs -r cat --) |
	    jq -cS -n 'reduce inputs as $b ({}; . * $b.entities)'
}

# bucket_files DIR: the bucket files meta.json names, ./meta.idx/I~G.json,
# one a line (none for a recdelta-store/1 index).
bucket_files() {
	jq -r '.buckets // [] | to_entries[] | select(.value > 0) |
	    "./meta.idx/\(.key)~\(.value).json"' "$1/meta.json"
}

make_dir_store() {
	local dir=$1

	mkdir -p -- "$dir" || return 1
	(
		set -e -o pipefail
		cd -- "$dir"
		# One line a record, tab-separated, nothing raw in it that
		# could break a line or a field: v, deleted, mtime, type and
		# key as JSON strings, the entity file's content.
		jq -r --arg mtime "$STORE_MTIME" '
		    def canon: if type == "object" then
			to_entries | sort_by(.key) | map(.value |= canon) |
			from_entries
		      elif type == "array" then map(canon) else . end;
		    select(.kind == "record") |
		    [((.rev // "1") | tostring),
		     (if .deleted == true then "1" else "0" end),
		     ((.mtime // $mtime) | tojson),
		     (.type | tojson), (.key | tojson),
		     ({fields: (.fields // {}), key, type} | canon | tojson)] |
		    join("\t")' |
		LC_ALL=C awk -F'\t' "$_DIRSTORE_AWK"'
		    BEGIN { init() }
		    {
			entry = "{\"type\":" $4 ",\"key\":" $5 ",\"v\":" $1 \
			    ",\"mtime\":" $3
			if ($2 == 1) {
				print entry ",\"deleted\":true}" > ".tombstones"
				next
			}
			td = enc(unjson($4))
			if (!(td in made)) {
				made[td] = 1
				if (system("mkdir -p -- \"" td "\"") != 0)
					exit 1
			}
			path = td "/" enc(unjson($5)) "~" $1 ".json"
			printf "%s\n", $6 > path
			close(path)
			print path "\t" entry
		    }' > .manifest
		: >> .tombstones
		cut -f1 .manifest | xargs -r -d '\n' sha256sum -- > .sums
		LC_ALL=C awk -F'\t' '
		    FILENAME == ".sums" {
			sum[substr($0, 67)] = substr($0, 1, 64)
			next
		    }
		    { print $2 ",\"sha256\":\"" sum[$1] "\"}" }' .sums .manifest |
		cat - .tombstones |
		jq -cS -s 'reduce .[] as $e ({};
			.[$e.type][$e.key] = ($e | del(.type, .key))) |
		    {format: "recdelta-store/1", generation: 1, entities: .}' \
		    > meta.json
		rm -f .manifest .sums .tombstones
	)
}
