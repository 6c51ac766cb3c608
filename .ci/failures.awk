# What failing Go tests said, from `go test` output: for each "--- FAIL"
# line, the file:line messages its test logged (with -v they come before it,
# without -v after it), leaving out the log tails the e2e harness dumps.
function message(line) { return line ~ /_test\.go:[0-9]+: / && line !~ /--- tail of / }
/^(ok|FAIL|PASS)[[:space:]]/ { cur = ""; after = 0; next }
/^=== (RUN|CONT|NAME)/ { cur = $3; after = 0; next }
/^[[:space:]]*--- FAIL: / { printf "%s", said[$3]; delete said[$3]; print; after = 1; next }
/^[[:space:]]*--- (PASS|SKIP): / { delete said[$3]; after = 0; next }
message($0) {
	if (after && cur == "") { print } else { said[cur] = said[cur] $0 "\n" }
}
