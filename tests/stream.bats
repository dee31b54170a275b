#!/usr/bin/env bats
# lib/stream through tests/helpers/streamkinds (built by make check): every
# line kind parsed and written again by its own parser and writer comes out
# byte for byte, in the form the programs write it; a bad line of each kind
# is refused with a message naming the member and the line.

bats_require_minimum_version 1.5.0

load helpers/common

STREAMKINDS=$TOP/tests/helpers/streamkinds

@test "every kind round-trips byte for byte: record, change (with target), result, cursor, summary, conflict; other kinds as they are" {
	cat > in <<'EOF2'
{"kind":"record","type":"Stadium","key":"stadium_ari","rev":"7","mtime":"2026-01-10T16:02:53Z","fields":{"name":"State Farm Stadium","capacity":63400,"location":{"$loc":{"lat":33.5276,"lng":-112.2626}},"team":{"$ref":"team_ari"}}}
{"kind":"record","type":"T\"q","key":"a\u0000b\n\\","fields":{"n":12345678901234567890,"x":1.50e+3,"s":"é 日本 😀","l":[null,true,false,{}]}}
{"kind":"record","type":"*","key":"team_stl","deleted":true}
{"kind":"record","type":"Team","key":"t","rev":"","deleted":true,"fields":{}}
{"kind":"change","op":"update","type":"Stadium","key":"stadium_ari","rev":"7","fields":{"capacity":63400},"changed":["capacity"]}
{"kind":"change","op":"create","type":"T","key":"k","fields":{}}
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1"}
{"kind":"change","op":"same","type":"T","key":"k","rev":"2","fields":{"n":1}}
{"kind":"change","op":"update","type":"T","key":"k","rev":"3","fields":{"n":2},"changed":["n"],"target":"remote"}
{"kind":"change","op":"delete","type":"T","key":"k","rev":"3","target":"local"}
{"kind":"change","op":"update","type":"T","key":"k","rev":"4","fields":{"n":1},"changed":["n"],"seen":"ddaefaf9327384fc15ff9781fd478a249ef6307d2fe6020786fb5222ecf4ae27","before":{"rev":"4","fields":{"n":{"$int":"9223372036854775807"}}},"undoes":12}
{"kind":"change","op":"create","type":"T","key":"k","fields":{"s":"é"},"undoes":999999999999999999}
{"kind":"change","op":"delete","type":"T","key":"k","rev":"5","before":{"fields":{}}}
{"kind":"result","op":"update","type":"T","key":"k","status":"ok","rev":"5","fields":{"n":1},"before":{"rev":"4","fields":{"n":2}}}
{"kind":"result","op":"update","type":"Stadium","key":"stadium_ari","status":"ok","rev":"8","fields":{"capacity":63400}}
{"kind":"result","op":"same","type":"T","key":"k","status":"skipped","rev":"2","fields":{"n":1}}
{"kind":"result","op":"delete","type":"T","key":"k","status":"skipped","error":{"code":"orphan","message":"not deleted without --delete-orphans"}}
{"kind":"result","op":"update","type":"T","key":"k","status":"deferred","rev":"3","fields":{"n":2},"changed":["n"],"error":{"code":"unreachable","message":"\"x\" down"}}
{"kind":"result","op":"create","type":"T","key":"k","status":"planned","fields":{}}
{"kind":"result","op":"create","type":"T","key":"k","status":"failed","error":{"code":"type"}}
{"kind":"result","op":"create","type":"T","key":"k","status":"conflict","error":{"message":"m"}}
{"kind":"cursor","source":"cloudkit:iCloud.app/development/public","name":"continuationMarker","value":"Team:AbC1"}
{"kind":"cursor","name":"seq","value":42}
{"kind":"cursor","name":"obj","value":{"a":[1,"\u0001"]}}
{"kind":"summary","stage":"diff","counts":{"Stadium":{"same":32,"create":2,"update":1,"delete":0},"Team":{"same":0,"create":0,"update":0,"delete":18446744073709551}}}
{"kind":"summary","stage":"push","counts":{}}
{"kind":"summary","stage":"merge","counts":{"Game":{"local":3,"remote":5,"merged":1,"conflicts":2,"unchanged":2890}}}
{"kind":"conflict","type":"Stadium","key":"stadium_ari","field":"capacity","base":63400,"local":64000,"remote":65000,"winner":"local","reason":"changed later"}
{"kind":"conflict","type":"T","key":"k","field":"f","local":null,"winner":"remote","reason":"r"}
{"kind":"conflict","type":"T","key":"k","base":{"n":1},"remote":{"n":2},"winner":"remote","reason":"deleted locally, changed remotely"}
{"kind":"window","start":"2025-01-01", "x" : [1, 2]}
{"kind":"later","op":"whatever"}
EOF2
	run -0 --separate-stderr "$STREAMKINDS" < in
	assert_equal "$stderr" ''
	assert_equal "$output" "$(cat in)"
}

@test "what the writers write: members in their order, absent ones left out, strings escaped afresh" {
	printf '%s\n' \
	    '{"fields":{"b":1,"a":"\u00e9\/"},"key":"k","type":"T","kind":"record","extra":1}' \
	    '{"changed":["n"],"fields":{"n":1},"rev":"1","key":"k","type":"T","op":"update","kind":"change"}' \
	    '{"error":{"message":"m","code":"c"},"status":"failed","key":"k","type":"T","op":"create","kind":"result"}' \
	    '{"value":"v","name":"n","kind":"cursor","source":"s"}' \
	    '{"counts":{"T":{"delete":4,"update":3,"create":2,"same":1}},"stage":"diff","kind":"summary"}' \
	    '{"reason":"r","winner":"local","remote":2,"local":1,"base":0,"field":"f","key":"k","type":"T","kind":"conflict"}' > in
	run -0 --separate-stderr "$STREAMKINDS" < in
	assert_equal "$stderr" ''
	assert_output - <<'EOF2'
{"kind":"record","type":"T","key":"k","fields":{"b":1,"a":"é/"}}
{"kind":"change","op":"update","type":"T","key":"k","rev":"1","fields":{"n":1},"changed":["n"]}
{"kind":"result","op":"create","type":"T","key":"k","status":"failed","error":{"code":"c","message":"m"}}
{"kind":"cursor","source":"s","name":"n","value":"v"}
{"kind":"summary","stage":"diff","counts":{"T":{"same":1,"create":2,"update":3,"delete":4}}}
{"kind":"conflict","type":"T","key":"k","field":"f","base":0,"local":1,"remote":2,"winner":"local","reason":"r"}
EOF2
}

@test "a bad line of each kind: exit 3, the line and the member named" {
	while IFS='|' read -r line msg; do
		printf '%s\n' '{"kind":"cursor","name":"n","value":1}' "$line" > in
		run -3 --separate-stderr "$STREAMKINDS" < in
		assert_equal "$stderr" "streamkinds: <stdin>:2: $msg"
	done <<'EOF2'
[1]|line is not a JSON object
{"type":"T"}|missing "kind"
{"kind":7}|"kind" is not a string
{"kind":""}|empty "kind"
{"kind":"record","type":"T","fields":{}}|missing "key"
{"kind":"record","type":"T","key":"","fields":{}}|empty "key"
{"kind":"record","type":"T","key":"k","rev":1,"fields":{}}|"rev" is not a string
{"kind":"record","type":"T","key":"k","deleted":1}|"deleted" is not a boolean
{"kind":"record","type":"T","key":"k","fields":[]}|"fields" is not an object
{"kind":"record","type":"T","key":"k"}|missing "fields"
{"kind":"change","op":"merge","type":"T","key":"k"}|"op" is not create, update, delete or same
{"kind":"change","type":"T","key":"k"}|"op" is not create, update, delete or same
{"kind":"change","op":"update","type":"T","key":"k","fields":{}}|missing "rev"
{"kind":"change","op":"delete","type":"T","key":"k","rev":""}|empty "rev"
{"kind":"change","op":"create","type":"T","key":"k"}|missing "fields"
{"kind":"change","op":"create","type":"T","key":"k","fields":{},"changed":"n"}|"changed" is not an array
{"kind":"change","op":"create","type":"T","key":"k","fields":{},"target":"both"}|"target" is not remote or local
{"kind":"result","op":"merge","type":"T","key":"k","status":"ok"}|unknown op "merge" (expected create, update, delete or same)
{"kind":"result","op":"create","type":"T","key":"k","status":"done"}|unknown status "done" (expected ok, skipped, conflict, deferred, failed or planned)
{"kind":"result","op":"create","type":"T","key":"k"}|missing "status"
{"kind":"result","op":"create","type":"T","key":"k","status":"ok","changed":[1]}|"changed" is not an array of strings
{"kind":"result","op":"create","type":"T","key":"k","status":"ok","error":[]}|"error" is not an object
{"kind":"result","op":"create","type":"T","key":"k","status":"ok","error":{"code":1}}|error: "code" is not a string
{"kind":"result","op":"update","type":"T","key":"k","status":"ok","before":[]}|"before" is not an object
{"kind":"result","op":"update","type":"T","key":"k","status":"ok","before":{"rev":"1"}}|before: missing "fields"
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1","before":{"rev":1,"fields":{}}}|before: "rev" is not a string
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1","before":{"fields":[]}}|before: "fields" is not an object
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1","undoes":0}|"undoes" is not a run number
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1","undoes":"3"}|"undoes" is not a run number
{"kind":"change","op":"delete","type":"T","key":"k","rev":"1","undoes":1.5}|"undoes" is not a run number
{"kind":"cursor","name":"x"}|missing "value"
{"kind":"cursor","source":1,"name":"x","value":1}|"source" is not a string
{"kind":"summary","counts":{}}|missing "stage"
{"kind":"summary","stage":"diff"}|missing "counts"
{"kind":"summary","stage":"diff","counts":{"T":{"same":1,"create":2,"update":3}}}|counts "T": "delete" is not a count
{"kind":"summary","stage":"diff","counts":{"T":{"same":-1,"create":2,"update":3,"delete":0}}}|counts "T": "same" is not a count
{"kind":"summary","stage":"diff","counts":{"T":{"same":1.5,"create":2,"update":3,"delete":0}}}|counts "T": "same" is not a count
{"kind":"summary","stage":"merge","counts":{"T":{"local":1,"remote":2,"merged":0,"conflicts":0}}}|counts "T": "unchanged" is not a count
{"kind":"summary","stage":"merge","counts":{"T":{"same":1,"create":2,"update":3,"delete":0}}}|counts "T": "local" is not a count
{"kind":"conflict","type":"T","key":"k","reason":"r"}|missing "winner"
{"kind":"conflict","type":"T","key":"k","winner":"base","reason":"r"}|"winner" is not local or remote
{"kind":"conflict","type":"T","key":"k","winner":"local"}|missing "reason"
EOF2
}
