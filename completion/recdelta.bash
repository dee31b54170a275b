# bash completion for recdelta, its programs and its flows.
#
# Installed by `make install` as share/bash-completion/completions/recdelta,
# with a link for each program, so that bash-completion loads it on demand;
# or source it from ~/.bashrc.  Everything it offers is read from the
# programs themselves: names from `recdelta help`, options, their arguments
# and the store schemes from `NAME --help`, so it stays in step with what
# is installed.

# _recdelta_help CMD...: the --help of the command, cached per command.
_recdelta_help() {
	local k="$*"
	if [[ ${_recdelta_cache_key-} != "$k" ]]; then
		_recdelta_cache=$("$@" --help 2>/dev/null)
		_recdelta_cache_key=$k
	fi
	printf '%s\n' "$_recdelta_cache"
}

# _recdelta_reply WORD CANDIDATE...: the candidates that start with WORD,
# cut as bash wants them when ":" splits words.
_recdelta_reply() {
	local cur=$1 c pre=
	shift
	[[ $COMP_WORDBREAKS == *:* && $cur == *:* ]] && pre=${cur%"${cur##*:}"}
	COMPREPLY=()
	for c in "$@"; do
		[[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$pre"}")
	done
}

# _recdelta_files WORD PREFIX: the paths that complete WORD after PREFIX.
_recdelta_files() {
	local cur=$1 prefix=$2 f
	local -a out=()
	while IFS= read -r f; do
		[[ -d $f ]] && f+=/
		out+=("$prefix$f")
	done < <(compgen -f -- "${cur#"$prefix"}")
	_recdelta_reply "$cur" "${out[@]}"
	[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]] && compopt -o nospace 2>/dev/null
	return 0
}

# The schemes a help text names ("dir:PATH"), one a line.
_recdelta_schemes() {
	grep -oE '(^|[ |])[a-z]+:[A-Z]' | grep -oE '[a-z]+:' | sort -u
}

# _recdelta_store WORD CMD...: a store word: a scheme the command's --help
# names, then the path of a file store.
_recdelta_store() {
	local cur=$1
	shift
	case $cur in
	ndjson:* | json:* | sqlite:* | dir:*)
		_recdelta_files "$cur" "${cur%%:*}:"
		;;
	*:*) COMPREPLY=() ;;
	*)
		local -a schemes
		mapfile -t schemes < <(_recdelta_help "$@" | _recdelta_schemes)
		# A flow's help names none: recdelta-fetch's names them all.
		[[ ${#schemes[@]} -gt 0 ]] ||
		    mapfile -t schemes < <(recdelta-fetch --help 2>/dev/null | _recdelta_schemes)
		_recdelta_reply "$cur" "${schemes[@]}" -
		compopt -o nospace 2>/dev/null
		;;
	esac
}

# _recdelta_argname OPT CMD...: the name of OPT's argument in the help
# ("SRC", "FILE"), empty when it takes none.
_recdelta_argname() {
	local opt=$1 long
	shift
	# "-r, --remote SRC" or "-r|--remote SRC": by its long name.
	if [[ $opt != --* ]]; then
		long=$(_recdelta_help "$@" | grep -oE -- "$opt(, |\|)--[a-z][a-z-]*" |
		    head -1 | grep -oE -- '--[a-z-]+$')
		[[ -n $long ]] && opt=$long
	fi
	_recdelta_help "$@" | grep -oE -- "(^|[ ,\[|])$opt[ =][A-Z][A-Z_]*" |
	    head -1 | grep -oE '[A-Z][A-Z_]*$'
}

_recdelta() {
	local line=${COMP_LINE:0:COMP_POINT}
	local cur=${line##*[[:space:]]} prev
	local -a words cmd
	read -ra words <<< "$line"
	[[ $line == *[[:space:]] ]] && words+=("")
	prev=${words[${#words[@]}-2]-}

	case ${words[0]##*/} in
	recdelta)
		if [[ ${#words[@]} -le 2 ]]; then
			local -a names
			mapfile -t names < <(recdelta help 2>/dev/null |
			    sed -nE 's/^(programs|flows): *//p' | tr ',' '\n' |
			    sed 's/^ *//; /^none installed$/d')
			_recdelta_reply "$cur" "${names[@]}" help
			return 0
		fi
		[[ ${words[1]} == help ]] && { _recdelta_reply "$cur"; return 0; }
		cmd=(recdelta "${words[1]}")
		;;
	*) cmd=("${words[0]}") ;;
	esac

	# The argument of an option.
	if [[ $prev == -* && $cur != -* ]]; then
		case $(_recdelta_argname "$prev" "${cmd[@]}") in
		"") ;;
		SRC | SOURCE | TGT | TARGET) _recdelta_store "$cur" "${cmd[@]}"; return 0 ;;
		FILE | PATH) _recdelta_files "$cur" ""; return 0 ;;
		*) COMPREPLY=(); return 0 ;;
		esac
	fi
	if [[ $cur == -* ]]; then
		local -a opts
		mapfile -t opts < <(_recdelta_help "${cmd[@]}" |
		    grep -oE -- '(^|[ ,\[|])--?[A-Za-z][A-Za-z0-9-]*' |
		    grep -oE -- '--?[A-Za-z][A-Za-z0-9-]*' | sort -u)
		_recdelta_reply "$cur" "${opts[@]}"
		return 0
	fi
	case ${cmd[*]} in
	*checkpoint)
		if [[ ${#words[@]} -le 2 || ( ${#cmd[@]} -eq 2 && ${#words[@]} -le 3 ) ]]; then
			local -a subs
			mapfile -t subs < <(_recdelta_help "${cmd[@]}" |
			    sed -nE 's/^(usage:)? *recdelta-checkpoint ([a-z]+).*/\2/p' | sort -u)
			_recdelta_reply "$cur" "${subs[@]}"
		fi
		;;
	*fetch | *push) _recdelta_store "$cur" "${cmd[@]}" ;;
	*) COMPREPLY=() ;;
	esac
	return 0
}

complete -F _recdelta recdelta recdelta-fetch recdelta-diff recdelta-push \
    recdelta-checkpoint recdelta-merge
