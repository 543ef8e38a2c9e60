package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckSchedules: `podmedic check` reports a bad cron expression, time zone and selector
// of a schedule as FILE:LINE:COL: field.path: message, all at once.
func TestCheckSchedules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`version: 1
rules:
  - {name: evicted, detect: {kind: Evicted}}
schedules:
  - name: sweep-evicted
    cron: "*/15 * * *"
    timezone: Europe/Amsterdm
    sweep:
      kind: Evicted
      match: {selector: "team in (data"}
      action: {type: delete-pod, mode: auto}
`), 0o600))
	code, out, errOut := cli(t, "check", path)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	require.Equal(t, []string{
		path + `:6:11: schedules[0].cron: invalid cron expression "*/15 * * *": expected 5 to 6 fields, found 4: [*/15 * * *]; use five fields (minute hour day-of-month month day-of-week), six with a leading seconds field, or a descriptor such as @daily or @every 15m`,
		path + `:7:15: schedules[0].timezone: unknown time zone "Europe/Amsterdm": use an IANA name such as Europe/Berlin, America/New_York or UTC`,
		path + `:10:25: schedules[0].sweep.match.selector: invalid label selector "team in (data": unable to parse requirement: found '', expected: ',' or ')'`,
		path + ": 3 problem(s)",
	}, lines)
}
