# Counts a KTAP/TAP stream's top-level results: prints "PASS FAIL SKIP".
# Tests announced by the plans ("1..N", one per program: a guest may run
# several) that never reported count as failed (a program crashed or the
# guest died midway).
/^1\.\.[0-9]+/ { split($0, a, "\\."); plan += a[3] + 0 }
/^ok [0-9]+/ { if ($0 ~ /# SKIP/) skip++; else pass++ }
/^not ok [0-9]+/ { if ($0 ~ /# SKIP/) skip++; else fail++ }
END {
	seen = pass + fail + skip
	if (plan > seen) fail += plan - seen
	if (plan == 0 && seen == 0) fail = 1
	printf "%d %d %d\n", pass, fail, skip
}
