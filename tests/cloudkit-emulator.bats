#!/usr/bin/env bats
# The CloudKit emulator itself (tests/servers/cloudkit-emulator.js), checked
# with an independent signer (openssl in shell, helpers/cloudkit.bash)
# against ../shared/protocols/cloudkit.md §2 and §10.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit

teardown() {
	ck_stop
}

# modify_body OPS-JSON: a records/modify body for the default zone.
modify_body() {
	jq -cn --argjson ops "$1" '{zoneID:{zoneName:"_defaultZone"},operations:$ops}'
}

# creates PREFIX FROM TO: create operations for Item records PREFIX-NNNN.
creates() {
	jq -cn --arg p "$1" --argjson a "$2" --argjson b "$3" \
	    '[range($a; $b) | {operationType:"create",
	      record:{recordName:($p + "-" + (tostring | ("0000" + .)[-4:])),
	              recordType:"Item", fields:{n:{value:.}}}}]'
}

@test "a correctly signed request is accepted" {
	ck_start
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c .records r.json
	assert_output '[]'
}

@test "a tampered body is refused with 401 AUTHENTICATION_FAILED" {
	ck_start
	p=$(ck_path records/query)
	d=$(ck_date)
	s=$(ck_sign "$d" '{"query":{"recordType":"Item"}}' "$p")
	ck_raw "$p" "$d" "$s" "$CK_KEY_ID" '{"query":{"recordType":"Itex"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r '.serverErrorCode, (.uuid | length > 0), (.reason | length > 0)' r.json
	assert_output $'AUTHENTICATION_FAILED\ntrue\ntrue'
	# a signature over another path, and a garbled signature, fail the same way
	s=$(ck_sign "$d" '{}' "$(ck_path records/lookup)")
	ck_raw "$p" "$d" "$s" "$CK_KEY_ID" '{}' > r.json
	[ "$CK_STATUS" = 401 ]
	ck_raw "$p" "$d" 'not base64!' "$CK_KEY_ID" '{}' > r.json
	[ "$CK_STATUS" = 401 ]
	ck_raw "$p" "$d" "" "$CK_KEY_ID" '{}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r .serverErrorCode r.json
	assert_output AUTHENTICATION_FAILED
}

@test "an unknown key id, a wrong container, environment or database get 401" {
	ck_start
	CK_KEY_ID=otherkey ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r .serverErrorCode r.json
	assert_output AUTHENTICATION_FAILED
	CK_CONTAINER=iCloud.com.example.other ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	CK_ENVIRONMENT=production ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	CK_DATABASE=private ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r .serverErrorCode r.json
	assert_output AUTHENTICATION_FAILED
}

@test "a date 10 minutes off, or not in the exact format, gets 401" {
	ck_start
	CK_DATE_OFFSET=600 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	CK_DATE_OFFSET=-600 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r .serverErrorCode r.json
	assert_output AUTHENTICATION_FAILED
	# within the default ±300 s is fine
	CK_DATE_OFFSET=-120 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	p=$(ck_path records/query)
	d=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
	s=$(ck_sign "$d" '{}' "$p")
	ck_raw "$p" "$d" "$s" "$CK_KEY_ID" '{}' > r.json
	[ "$CK_STATUS" = 401 ]
	d=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
	s=$(ck_sign "$d" '{}' "$p")
	ck_raw "$p" "$d" "$s" "$CK_KEY_ID" '{}' > r.json
	[ "$CK_STATUS" = 401 ]
}

@test "--clock-offset moves the clock that request dates are checked against" {
	# The emulator's clock 600 s ahead: a date of now is 10 minutes off,
	# one 600 s ahead is on time, and the ±300 s window moves with it.
	ck_start --clock-offset 600
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	run jq -r .serverErrorCode r.json
	assert_output AUTHENTICATION_FAILED
	run jq -r '.[-1].why' <(ck_control GET log)
	assert_output 'date outside allowed skew'
	CK_DATE_OFFSET=600 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	CK_DATE_OFFSET=420 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	CK_DATE_OFFSET=1200 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	ck_stop
	# behind (a new key pair, so a new keys file), and a value that is not
	# a number
	unset CK_KEYS_JSON
	ck_start --clock-offset -600
	CK_DATE_OFFSET=-600 ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 401 ]
	ck_stop
	run -2 node "$TOP/tests/servers/cloudkit-emulator.js" --port 0 --keys "$CK_KEYS_JSON" --clock-offset soon
	assert_output --partial 'cloudkit-emulator: bad number'
}

@test "the brief's §2 test vector verifies" {
	cat > vector.pem <<'EOF'
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKNmgNu0pSKPeQNmlW/xlRC/UdLJK
SfJkw+7urYRyikRUMwvzZZy6TQyxEmqQ/d3Whcy2+zNWN6RH0qynnHNR2w==
-----END PUBLIC KEY-----
EOF
	ck_keys_json vectorkey vector.pem iCloud.com.example.sync development > keys.json
	CK_KEYS_JSON=$PWD/keys.json ck_start --skew 9999999999
	body='{"query":{"recordType":"Item"},"resultsLimit":2}'
	run bash -c "printf %s '$body' | openssl dgst -sha256 -binary | base64"
	assert_output 'I40ih5HB3b8yOK/x/VXIcIAKGK2dh8UAWj83WH7QvXs='
	p=/database/1/iCloud.com.example.sync/development/public/records/query
	sig='MEUCIFqh9HbcY445bO56Qaz4lROHbm+5gbA9RiICz02tIpI+AiEA+sLNafDt0/j1A3N+id4BTP4Le/04RrmDGvNMLnJijnw='
	ck_raw "$p" 2024-05-01T12:00:00Z "$sig" vectorkey "$body" > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c .records r.json
	assert_output '[]'
	# one second later, or one byte more, and it no longer verifies
	ck_raw "$p" 2024-05-01T12:00:01Z "$sig" vectorkey "$body" > r.json
	[ "$CK_STATUS" = 401 ]
	ck_raw "$p" 2024-05-01T12:00:00Z "$sig" vectorkey "$body " > r.json
	[ "$CK_STATUS" = 401 ]
}

@test "create, query, update with a stale tag conflicts, the right tag wins" {
	ck_start
	ck_request records/modify "$(modify_body '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{"name":{"value":"Ann"},"n":{"value":1}}}}]')" > r.json
	[ "$CK_STATUS" = 200 ]
	tag1=$(jq -r '.records[0].recordChangeTag' r.json)
	run jq -c '.records[0] | [.recordName, .fields.name.type, .fields.n.type, (.created.timestamp > 0), .modified.userRecordName != null]' r.json
	assert_output '["a","STRING","INT64",true,true]'

	ck_request records/query '{"query":{"recordType":"Item","filterBy":[{"fieldName":"name","comparator":"EQUALS","fieldValue":{"value":"Ann","type":"STRING"}}]}}' > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c '[.records[] | [.recordName, .recordChangeTag]]' r.json
	assert_output "[[\"a\",\"$tag1\"]]"

	ck_request records/modify "$(modify_body '[{"operationType":"update","record":{"recordName":"a","recordType":"Item","recordChangeTag":"'"$tag1"'","fields":{"name":{"value":"Bo"}}}}]')" > r.json
	[ "$CK_STATUS" = 200 ]
	tag2=$(jq -r '.records[0].recordChangeTag' r.json)
	[ "$tag2" != "$tag1" ]
	run jq -c '.records[0].fields | [.name.value, .n.value]' r.json
	assert_output '["Bo",1]'

	# the first tag is stale now: per-record CONFLICT inside HTTP 200
	ck_request records/modify "$(modify_body '[{"operationType":"update","record":{"recordName":"a","recordType":"Item","recordChangeTag":"'"$tag1"'","fields":{"name":{"value":"Cy"}}}},{"operationType":"create","record":{"recordName":"a2","recordType":"Item","fields":{}}}]')" > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c '[.records[] | [.recordName, .serverErrorCode // "ok"]]' r.json
	assert_output '[["a","CONFLICT"],["a2","ok"]]'

	# create of an existing name, update/delete of a missing one
	ck_request records/modify "$(modify_body '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{}}},{"operationType":"update","record":{"recordName":"zz","recordType":"Item","recordChangeTag":"1","fields":{}}},{"operationType":"delete","record":{"recordName":"zy","recordChangeTag":"1"}}]')" > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c '[.records[] | [.recordName, .serverErrorCode, .reason]]' r.json
	assert_output '[["a","CONFLICT","record to insert already exists"],["zz","NOT_FOUND","Record not found"],["zy","NOT_FOUND","Record not found"]]'

	# the right tag works and yields a new one; delete with it
	ck_request records/modify "$(modify_body '[{"operationType":"update","record":{"recordName":"a","recordType":"Item","recordChangeTag":"'"$tag2"'","fields":{"name":{"value":"Di"}}}}]')" > r.json
	tag3=$(jq -r '.records[0].recordChangeTag' r.json)
	[ -n "$tag3" ] && [ "$tag3" != null ] && [ "$tag3" != "$tag2" ]
	ck_request records/modify "$(modify_body '[{"operationType":"delete","record":{"recordName":"a","recordChangeTag":"'"$tag3"'"}},{"operationType":"forceReplace","record":{"recordName":"a2","recordType":"Item","fields":{"x":{"value":2.5}}}}]')" > r.json
	run jq -c '[.records[0], (.records[1].fields | to_entries | map([.key, .value.type]))]' r.json
	assert_output '[{"recordName":"a","deleted":true,"zoneID":{"zoneName":"_defaultZone"}},[["x","DOUBLE"]]]'
	ck_request records/lookup '{"records":[{"recordName":"a"},{"recordName":"a2"}]}' > r.json
	run jq -c '[.records[] | [.recordName, .serverErrorCode // .recordType]]' r.json
	assert_output '[["a","NOT_FOUND"],["a2","Item"]]'
}

@test "the top-level 409 switch answers a failing single operation" {
	ck_start
	ck_request records/modify "$(modify_body '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{}}}]')" > r.json
	ck_control POST options '{"conflictTopLevel":true}' > /dev/null
	ck_request records/modify "$(modify_body '[{"operationType":"update","record":{"recordName":"a","recordType":"Item","recordChangeTag":"stale","fields":{}}}]')" > r.json
	[ "$CK_STATUS" = 409 ]
	run jq -r '.serverErrorCode, (.uuid | length > 0)' r.json
	assert_output $'CONFLICT\ntrue'
}

@test "INT64 keeps every digit, past 2^53 and at the int64 limits" {
	ck_start
	body='{"operations":[{"operationType":"create","record":{"recordName":"big","recordType":"Num","fields":{"a":{"value":9007199254740993},"b":{"value":9223372036854775807,"type":"INT64"},"c":{"value":-9223372036854775808,"type":"INT64"},"d":{"value":"12345678901234567","type":"INT64"},"e":{"value":1.5}}}}]}'
	ck_request records/modify "$body" > r.json
	[ "$CK_STATUS" = 200 ]
	ck_request records/lookup '{"records":[{"recordName":"big"}]}' > r.json
	[ "$CK_STATUS" = 200 ]
	grep -F '"a":{"value":9007199254740993,"type":"INT64"}' r.json
	grep -F '"b":{"value":9223372036854775807,"type":"INT64"}' r.json
	grep -F '"c":{"value":-9223372036854775808,"type":"INT64"}' r.json
	grep -F '"d":{"value":12345678901234567,"type":"INT64"}' r.json
	grep -F '"e":{"value":1.5,"type":"DOUBLE"}' r.json
	# beyond int64: a per-record BAD_REQUEST
	ck_request records/modify '{"operations":[{"operationType":"create","record":{"recordName":"huge","recordType":"Num","fields":{"a":{"value":12345678901234567890}}}}]}' > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -r '.records[0].serverErrorCode' r.json
	assert_output BAD_REQUEST
	# a query filter on the exact value finds it
	ck_request records/query '{"query":{"recordType":"Num","filterBy":[{"fieldName":"a","comparator":"EQUALS","fieldValue":{"value":9007199254740993,"type":"INT64"}}]}}' > r.json
	run jq -r '.records | length' r.json
	assert_output 1
	ck_request records/query '{"query":{"recordType":"Num","filterBy":[{"fieldName":"a","comparator":"EQUALS","fieldValue":{"value":9007199254740992,"type":"INT64"}}]}}' > r.json
	run jq -r '.records | length' r.json
	assert_output 0
}

@test "450 records page as 200, 200, 50 with markers that survive writes" {
	ck_start
	for r in "0 200" "200 400" "400 450"; do
		set -- $r
		ck_request records/modify "$(modify_body "$(creates it "$1" "$2")")" > r.json
		[ "$CK_STATUS" = 200 ]
		[ "$(jq '[.records[] | select(.serverErrorCode)] | length' r.json)" = 0 ]
	done
	q='{"query":{"recordType":"Item","sortBy":[{"systemFieldName":"recordName","ascending":true}]},"resultsLimit":500}'
	ck_request records/query "$q" > p1.json
	[ "$CK_STATUS" = 200 ]
	m1=$(jq -r .continuationMarker p1.json)
	[ "$m1" != null ]
	# a write between pages does not invalidate the marker
	# (a record before the marker, so the rest of the paging is unchanged)
	ck_request records/modify "$(modify_body "$(creates aa 0 1)")" > r.json
	[ "$(jq -r '.records[0].recordName' r.json)" = aa-0000 ]
	ck_request records/query "$(jq -c --arg m "$m1" '. + {continuationMarker:$m}' <<< "$q")" > p2.json
	m2=$(jq -r .continuationMarker p2.json)
	[ "$m2" != null ]
	ck_request records/query "$(jq -c --arg m "$m2" '. + {continuationMarker:$m}' <<< "$q")" > p3.json
	run jq -c -s 'map(.records | length) + [.[2].continuationMarker]' p1.json p2.json p3.json
	assert_output '[200,200,50,null]'
	run jq -r -s '[.[].records[].recordName] | [length, (unique | length), .[0], .[-1], (. == sort)] | @tsv' p1.json p2.json p3.json
	assert_output $'450\t450\tit-0000\tit-0449\ttrue'
	# filters, descending sort, desiredKeys, a small resultsLimit
	ck_request records/query '{"query":{"recordType":"Item","filterBy":[{"fieldName":"n","comparator":"GREATER_THAN_OR_EQUALS","fieldValue":{"value":440}},{"systemFieldName":"recordName","comparator":"BEGINS_WITH","fieldValue":{"value":"it-04"}}],"sortBy":[{"fieldName":"n","ascending":false}]},"resultsLimit":3,"desiredKeys":[]}' > r.json
	run jq -c '[.records[] | [.recordName, .fields]], (.continuationMarker != null)' r.json
	assert_output $'[["it-0449",{}],["it-0448",{}],["it-0447",{}]]\ntrue'
	ck_request records/query '{"query":{"recordType":"Item","filterBy":[{"fieldName":"n","comparator":"IN","fieldValue":{"value":[3,7,1000],"type":"INT64_LIST"}}]}}' > r.json
	run jq -c '[.records[].recordName]' r.json
	assert_output '["it-0003","it-0007"]'
}

@test "more than 200 operations, or a name twice, is a 400 BAD_REQUEST" {
	ck_start
	ck_request records/modify "$(modify_body "$(creates it 0 201)")" > r.json
	[ "$CK_STATUS" = 400 ]
	run jq -r '.serverErrorCode, (.uuid | length > 0)' r.json
	assert_output $'BAD_REQUEST\ntrue'
	ck_request records/modify "$(modify_body '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{}}},{"operationType":"forceDelete","record":{"recordName":"a"}}]')" > r.json
	[ "$CK_STATUS" = 400 ]
	# nothing was written by either
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	run jq -r '.records | length' r.json
	assert_output 0
}

@test "an injected THROTTLED fault with retryAfter, then success; other faults" {
	ck_start
	ck_control POST faults '{"path":"records/modify","count":1,"status":429,"serverErrorCode":"THROTTLED","retryAfter":1}' > /dev/null
	body=$(modify_body "$(creates it 0 2)")
	ck_request records/modify "$body" > r.json
	[ "$CK_STATUS" = 429 ]
	run jq -c '[.serverErrorCode, .retryAfter, (.uuid | length > 0), (.reason | length > 0)]' r.json
	assert_output '["THROTTLED",1,true,true]'
	ck_request records/modify "$body" > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -r '.records | length' r.json
	assert_output 2
	# a dropped connection, then a slow but good answer, then a 503
	ck_control POST faults '[{"path":"records/query","drop":true},{"path":"records/query","delayMs":300},{"path":"records/query","status":503}]' > /dev/null
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json || true
	[ "$CK_STATUS" = 000 ]
	t0=$(date +%s%N)
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 200 ]
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 300 ]
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 503 ]
	run jq -r .serverErrorCode r.json
	assert_output TRY_AGAIN_LATER
	# a per-record fault
	ck_control POST faults '{"path":"records/modify","recordName":"x1","serverErrorCode":"QUOTA_EXCEEDED"}' > /dev/null
	ck_request records/modify "$(modify_body "$(creates x 0 2 | sed 's/x-000/x/g')")" > r.json
	[ "$CK_STATUS" = 200 ]
	run jq -c '[.records[] | [.recordName, .serverErrorCode // "ok"]]' r.json
	assert_output '[["x0","ok"],["x1","QUOTA_EXCEEDED"]]'
}

@test "a fault with after lets that many requests by; a held request waits until released, and GET held counts it" {
	ck_start
	ck_control POST faults '{"path":"records/query","hold":true,"after":1}' > /dev/null
	ck_request records/query '{"query":{"recordType":"Item"}}' > r1.json
	[ "$CK_STATUS" = 200 ]
	assert_equal "$(ck_control GET held)" '{"held":0}'
	ck_request records/query '{"query":{"recordType":"Item"}}' > r2.json 3>&- &
	pid=$!
	held() {
		[ "$(ck_control GET held | jq .held)" = 1 ]
	}
	wait_until held
	# Held: not answered, not logged.
	kill -0 "$pid"
	assert_equal "$(ck_control GET log | jq length)" 1
	assert_equal "$(ck_control POST release)" '{"released":1}'
	wait "$pid"
	run jq -c .records r2.json
	assert_output '[]'
	assert_equal "$(ck_control GET held)" '{"held":0}'
	assert_equal "$(ck_control GET log | jq -c '[.[] | .fault]')" '[null,"delay"]'
	assert_equal "$(ck_control GET faults)" '[]'
}

@test "the request log counts requests and operations; reset forgets" {
	ck_start
	ck_request records/modify "$(modify_body "$(creates it 0 150)")" > /dev/null
	ck_request records/modify "$(modify_body "$(creates it 150 180)")" > /dev/null
	ck_request records/query '{"query":{"recordType":"Item"}}' > /dev/null
	CK_KEY_ID=nobody ck_request records/query '{}' > /dev/null
	ck_control GET log > log.json
	run jq -c '[.[] | [.method, .op, .status, .ops]]' log.json
	assert_output '[["POST","records/modify",200,150],["POST","records/modify",200,30],["POST","records/query",200,1],["POST","records/query",401,0]]'
	run jq -r '.[0] | [(.path | endswith("/public/records/modify")), (.ts > 0)] | @tsv' log.json
	assert_output $'true\ttrue'
	[ "$(ck_control GET 'log?format=ndjson' | wc -l)" = 4 ]
	ck_control POST reset > /dev/null
	[ "$(ck_control GET log | jq length)" = 0 ]
	ck_request records/query '{"query":{"recordType":"Item"}}' > r.json
	run jq -r '.records | length' r.json
	assert_output 0
}

@test "private custom zones: records/changes with syncToken, tombstones, moreComing" {
	ck_start --private-zones
	export CK_DATABASE=private
	ck_request zones/modify '{"operations":[{"operationType":"create","zone":{"zoneID":{"zoneName":"Sync"}}}]}' > r.json
	[ "$CK_STATUS" = 200 ]
	ck_request records/modify "$(jq -c '. + {zoneID:{zoneName:"Sync"}}' <<< "$(modify_body "$(creates it 0 3)")")" > r.json
	[ "$CK_STATUS" = 200 ]
	tag=$(jq -r '.records[0].recordChangeTag' r.json)
	ck_request records/changes '{"zoneID":{"zoneName":"Sync"},"resultsLimit":2}' > c1.json
	run jq -c '[[.records[].recordName], .moreComing]' c1.json
	assert_output '[["it-0000","it-0001"],true]'
	ck_request records/changes "$(jq -c '{zoneID:{zoneName:"Sync"},syncToken:.syncToken}' c1.json)" > c2.json
	run jq -c '[[.records[].recordName], .moreComing]' c2.json
	assert_output '[["it-0002"],false]'
	ck_request records/modify '{"zoneID":{"zoneName":"Sync"},"operations":[{"operationType":"delete","record":{"recordName":"it-0000","recordChangeTag":"'"$tag"'"}}]}' > /dev/null
	ck_request records/changes "$(jq -c '{zoneID:{zoneName:"Sync"},syncToken:.syncToken}' c2.json)" > c3.json
	run jq -c '.records' c3.json
	assert_output '[{"recordName":"it-0000","deleted":true,"zoneID":{"zoneName":"Sync"}}]'
	# atomic batch with one failure: 400, ATOMIC_ERROR siblings, nothing written
	ck_request records/modify '{"zoneID":{"zoneName":"Sync"},"operations":[{"operationType":"create","record":{"recordName":"n1","recordType":"Item","fields":{}}},{"operationType":"create","record":{"recordName":"it-0001","recordType":"Item","fields":{}}}]}' > r.json
	[ "$CK_STATUS" = 400 ]
	run jq -c '[.records[] | [.recordName, .serverErrorCode]]' r.json
	assert_output '[["n1","ATOMIC_ERROR"],["it-0001","CONFLICT"]]'
	ck_request records/lookup '{"zoneID":{"zoneName":"Sync"},"records":[{"recordName":"n1"}]}' > r.json
	run jq -r '.records[0].serverErrorCode' r.json
	assert_output NOT_FOUND
	ck_request zones/list > r.json
	run jq -c '[.zones[].zoneID.zoneName] | sort' r.json
	assert_output '["Sync","_defaultZone"]'
	# the public database has no custom zones
	CK_DATABASE=public ck_request records/query '{"zoneID":{"zoneName":"Sync"},"query":{"recordType":"Item"}}' > r.json
	[ "$CK_STATUS" = 404 ]
	run jq -r .serverErrorCode r.json
	assert_output ZONE_NOT_FOUND
}
