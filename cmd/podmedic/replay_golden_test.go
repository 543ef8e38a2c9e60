package main

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestReplayBadNightJSON: the JSON lines of a whole bad night (several kinds at once plus
// healthy pods), exactly, with the default rules.
func TestReplayBadNightJSON(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--config", "../../rules.yaml",
		"--input", "../../rules/testdata/replay/bad-night.json", "--output", "json")
	require.Equal(t, 0, code, errOut)
	const golden = "testdata/bad-night.jsonl"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out, "go test ./cmd/podmedic -run TestReplayBadNightJSON -update rewrites %s", golden)
}
