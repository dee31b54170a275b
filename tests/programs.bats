#!/usr/bin/env bats
# What every program owes its users (STYLE.md): --help, --version, a usage
# error for a bad option, and a usage that says what its man page says.

bats_require_minimum_version 1.5.0

load helpers/common

# The programs: every executable bin/recdelta*, sources left out.
programs() {
	local p

	for p in "$TOP"/bin/recdelta*; do
		case $p in *.c) continue ;; esac
		[ -x "$p" ] && printf '%s\n' "${p##*/}"
	done
}

# usage_lines NAME: the usage of NAME's --help, from "usage:" up to the
# first blank line.
usage_lines() {
	"$1" --help | awk '/^usage:/ { on = 1 } on && /^[ \t]*$/ { exit } on'
}

# synopsis NAME: the SYNOPSIS section of man/man1/NAME.1, rendered.
synopsis() {
	mandoc -Tascii -Owidth=1000 "$TOP/man/man1/$1.1" | col -bx |
	    awk '/^[A-Z]/ { on = ($0 == "SYNOPSIS"); next } on'
}

# aliases NAME: "-x --long" for each option NAME's --help lists as
# "  -x, --long ...".
aliases() {
	"$1" --help | sed -nE 's/^[[:space:]]+(-[A-Za-z0-9]), (--[A-Za-z0-9-]+).*/\1 \2/p'
}

# options NAME: the option names in the text on stdin (-i, --local), an
# option starting a word or following [ ( or |; each given by its long name
# where NAME's --help pairs it with one; -h, --help, -V and --version left
# out (every program has them, tested above, and a synopsis may or may not
# list them); one a line, sorted, unique.
options() {
	grep -oE '(^|[][ (|])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[][ (|]//' |
	    awk 'FILENAME != "-" { long[$1] = $2; next }
		{ o = ($0 in long) ? long[$0] : $0 }
		o !~ /^(-h|--help|-V|--version)$/ { print o }' <(aliases "$1") - |
	    LC_ALL=C sort -u
}

@test "there are programs to check" {
	run programs
	assert_line recdelta
	assert_line recdelta-fetch
	assert_line recdelta-diff
}

@test "every program source is built and in the Makefile's BIN" {
	for src in "$TOP"/bin/recdelta*.c; do
		[ -e "$src" ] || continue
		name=${src##*/}
		name=${name%.c}
		[ -x "$TOP/bin/$name" ] || fail "bin/$name is not built"
		grep -qE "^[[:space:]]*bin/$name([[:space:]]|\\\\|\$)" "$TOP/Makefile" ||
		    fail "bin/$name is not in the Makefile's BIN"
	done
}

@test "every program's --help prints usage on stdout and exits 0" {
	for p in $(programs); do
		run -0 --separate-stderr "$p" --help
		[ -z "$stderr" ] || fail "$p --help wrote on stderr: $stderr"
		[[ ${lines[0]} == "usage: $p "* ]] ||
		    fail "$p --help: first line is not \"usage: $p ...\": ${lines[0]}"
		run -0 --separate-stderr "$p" -h
		[[ ${lines[0]} == "usage: $p "* ]] || fail "$p -h: no usage"
	done
}

@test "every program's --version prints its name and the version, exit 0" {
	version=$(recdelta --version)
	version=${version#recdelta }
	[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "odd version: $version"
	for p in $(programs); do
		run -0 --separate-stderr "$p" --version
		[ -z "$stderr" ] || fail "$p --version wrote on stderr: $stderr"
		[ "$output" = "$p $version" ] ||
		    fail "$p --version: \"$output\", expected \"$p $version\""
	done
}

@test "every program exits 2 on a bad option, with usage on stderr only" {
	for p in $(programs); do
		for bad in --no-such-option -%; do
			run -2 --separate-stderr "$p" "$bad"
			[ -z "$output" ] || fail "$p $bad wrote on stdout: $output"
			grep -q "^usage: $p " <<<"$stderr" ||
			    fail "$p $bad: no usage on stderr: $stderr"
		done
	done
}

@test "every program other than recdelta answers through the dispatcher" {
	for p in $(programs); do
		[ "$p" = recdelta ] && continue
		run -0 --separate-stderr recdelta "${p#recdelta-}" --help
		[ "$output" = "$("$p" --help)" ] ||
		    fail "recdelta ${p#recdelta-} --help differs from $p --help"
	done
}

@test "every program has a man page whose SYNOPSIS has the options of its usage" {
	errors=
	for p in $(programs); do
		if [ ! -f "$TOP/man/man1/$p.1" ]; then
			errors+="$p: no man page man/man1/$p.1"$'\n'
			continue
		fi
		if [ -z "$(synopsis "$p")" ]; then
			errors+="$p: man/man1/$p.1 has no SYNOPSIS"$'\n'
			continue
		fi
		man_opts=$(synopsis "$p" | options "$p")
		usage_opts=$(usage_lines "$p" | options "$p")
		if [ "$man_opts" != "$usage_opts" ]; then
			errors+="$p: only in --help: $(LC_ALL=C comm -23 <(echo "$usage_opts") <(echo "$man_opts") | tr '\n' ' ')"
			errors+="only in the SYNOPSIS: $(LC_ALL=C comm -13 <(echo "$usage_opts") <(echo "$man_opts") | tr '\n' ' ')"$'\n'
		fi
	done
	[ -z "$errors" ] || fail "$errors"
}

@test "every man page is clean under mandoc -T lint -W warning and renders" {
	for m in "$TOP"/man/man*/*.[1-9]; do
		run -0 mandoc -T lint -W warning "$m"
		assert_output ''
		run -0 --separate-stderr mandoc -T ascii "$m"
		[ "${#lines[@]}" -gt 20 ] || fail "${m#"$TOP"/}: rendered to ${#lines[@]} lines"
	done
}

# sections PAGE: the titles of PAGE's .Sh and .Ss headings, one a line.
sections() {
	sed -n 's/^\.S[hs] //p' "$1" | sed 's/\\&//g'
}

# sx_refs PAGE: "LINE<TAB>TARGET<TAB>TITLE" for each .Sx of PAGE: TARGET is
# the page an .Xr within the three lines before it names, unless the .Xr
# ends its sentence (a section of another page: "as recdelta-diff(1)
# describes under Summary"), else PAGE.
sx_refs() {
	awk -v self="$1" '
	{ hist[FNR % 4] = $0 }
	/(^\.| )Sx / {
		t = $0
		sub(/.*Sx /, "", t)
		while (t ~ / [.,;:()]$/)
			t = substr(t, 1, length(t) - 2)
		gsub(/\\&/, "", t)
		target = self
		for (i = 1; i <= 3; i++) {
			l = hist[(FNR - i + 4) % 4]
			# Not an .Xr that ends its sentence.
			if (FNR - i > 0 && l ~ /^\.Xr recdelta/ && l !~ / \.$/) {
				split(l, w, " ")
				target = w[2] "." w[3]
				break
			}
		}
		printf "%d\t%s\t%s\n", FNR, target, t
	}' "$1"
}

@test "every .Sx names a section of its page, or of the page an .Xr before it names" {
	errors=
	for m in "$TOP"/man/man*/*.[1-9]; do
		while IFS=$'\t' read -r line target title; do
			case $target in
			"$m") page=$m ;;
			*) page=$(ls "$TOP"/man/man*/"$target" 2>/dev/null) ||
			    { errors+="${m#"$TOP"/}:$line: no page $target"$'\n'; continue; } ;;
			esac
			sections "$page" | grep -qxF -- "$title" ||
			    errors+="${m#"$TOP"/}:$line: .Sx $title: no such section in ${page##*/}"$'\n'
		done < <(sx_refs "$m")
	done
	[ -z "$errors" ] || fail "$errors"
}

@test "the outbox's replay command is the same in the refusal and the manuals" {
	export RECDELTA_STATE=$BATS_TEST_TMPDIR/s.db
	res delete T a deferred 1 | recdelta-checkpoint record --scope S > /dev/null
	run -5 --separate-stderr recdelta-checkpoint preflight --scope S
	said=$(sed -n 's/^  replay it first: //p' <<<"$stderr" | sed "s| --state $RECDELTA_STATE||g")
	assert_equal "$said" \
	    'recdelta-checkpoint outbox | recdelta-push --delete-orphans TARGET | recdelta-checkpoint record --scope S'
	cmd=${said% | *}
	for m in "$TOP"/man/man1/recdelta-checkpoint.1 "$TOP"/man/man7/recdelta-flows.7; do
		# Every replay command in the page, rendered, delivers deletes too.
		# (A page may name the state, as the refusal does: --state S.)
		rendered=$(mandoc -Tascii -Owidth=1000 "$m" | col -bx |
		    sed 's/ --state [^ ]*//g')
		grep -qF -- "$cmd" <<<"$rendered" || fail "${m##*/}: no \"$cmd\""
		! grep -E 'outbox \| recdelta-push [A-Z]' <<<"$rendered" ||
		    fail "${m##*/}: a replay without --delete-orphans"
	done
}

@test "make install into a DESTDIR ships every program, flow and man page; man -l renders each page" {
	d=$BATS_TEST_TMPDIR/dest
	run -0 make -s -C "$TOP" install DESTDIR="$d" PREFIX=/opt/rd
	p=$d/opt/rd
	for b in $(programs); do
		[ -x "$p/bin/$b" ] || fail "make install left out bin/$b"
	done
	for f in "$TOP"/pipelines/*; do
		[ -f "$p/libexec/recdelta/${f##*/}" ] || fail "make install left out pipelines/${f##*/}"
	done
	n=0
	for m in "$TOP"/man/man*/*.[1-9]; do
		s=${m#"$TOP"/man/}
		[ -f "$p/share/man/$s" ] || fail "make install left out man/$s"
		run -0 --separate-stderr env MANPAGER=cat MANWIDTH=80 man -l "$p/share/man/$s"
		name=${s##*/}
		name=${name%.*}
		assert_line --index 0 --regexp "^${name^^}\("
		n=$((n + 1))
	done
	[ "$n" -ge 7 ]
}

@test "make install puts every program, flow and man page in place, and an installed flow runs" {
	p=$BATS_TEST_TMPDIR/prefix
	run -0 make -s -C "$TOP" install PREFIX="$p"
	for b in $(programs); do
		[ -x "$p/bin/$b" ] || fail "make install left out bin/$b"
	done
	for m in "$TOP"/man/man*/*.[1-9]; do
		s=${m#"$TOP"/man/}
		[ -f "$p/share/man/$s" ] || fail "make install left out man/$s"
	done
	for f in "$TOP"/pipelines/*; do
		[ -f "$p/libexec/recdelta/${f##*/}" ] || fail "make install left out pipelines/${f##*/}"
	done
	printf '{"kind":"record","type":"T","key":"a","fields":{"n":1}}\n' > l.ndjson
	printf '{"kind":"record","type":"T","key":"a","fields":{"n":2}}\n' > r.ndjson
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH="$p/bin:/usr/bin:/bin" \
	    recdelta diff-only -l ndjson:l.ndjson -r ndjson:r.ndjson
	assert_output 'Ts: 0 unchanged, 0 new, 1 updated, 0 deleted'
}
