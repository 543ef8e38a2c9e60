package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// cli runs the command in-process and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestReplayOOMKilledWorker(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--config", "../../rules.yaml", "--input", "testdata/oom-worker.json", "--output", "json")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, out)
	var f finding.Finding
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &f))
	require.Equal(t, finding.OOMKilled, f.Kind)
	require.Equal(t, "airflow", f.Namespace)
	require.Equal(t, "etl-load-7f9c", f.Pod)
	require.Equal(t, "base", f.Container)
	require.Equal(t, "etl_daily", f.Airflow.DagID)
	require.Equal(t, "load", f.Airflow.TaskID)
	require.Equal(t, "scheduled__2026-11-20T00:00:00+00:00", f.Airflow.RunID)
	require.Nil(t, f.Spark)
	require.Equal(t, []string{
		"container base terminated: OOMKilled (exit 137) at 2026-11-20T02:13:09Z", "memory limit 2Gi", "memory request 1Gi",
	}, f.Evidence)
	require.Equal(t, &finding.Action{Type: finding.ActionProposeMemoryLimit, Mode: finding.ModeApprove,
		Params: map[string]string{"container": "base", "limit": "3Gi", "request": "2Gi"}}, f.Action)
	// The contract's field order and null for absent identity.
	require.True(t, strings.HasPrefix(lines[0], `{"kind":"OOMKilled","rule":"oom","severity":"warning","namespace":"airflow","pod":"etl-load-7f9c","container":"base"`), lines[0])
	require.Contains(t, lines[0], `"spark":null`)
}

func TestReplayHealthyWorkerPrintsNothing(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--input", "testdata/healthy-worker.json")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, out)
}

func TestReplaySeveralInputsAndText(t *testing.T) {
	code, out, _ := cli(t, "replay", "--input", "testdata/healthy-worker.json", "--input", "testdata/oom-worker.json",
		"--output", "text", "--now", "2026-11-20T03:00:00Z")
	require.Equal(t, 0, code)
	require.Contains(t, out, "WARNING  OOMKilled  airflow/etl-load-7f9c/base  (rule oom)")
	require.Contains(t, out, "1 finding(s) in 2 pods, 0 PVCs, 0 events at 2026-11-20T03:00:00Z")
}

func TestReplayBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not a list", []string{"--input", "testdata/not-a-list.json"},
			`podmedic: testdata/not-a-list.json: not a Kubernetes List: kind is "Pod"`},
		{"missing file", []string{"--input", "testdata/nope.json"}, "podmedic: open testdata/nope.json: no such file or directory"},
		{"no input", nil, "podmedic: no input"},
		{"bad now", []string{"--input", "testdata/oom-worker.json", "--now", "yesterday"}, `podmedic: --now: "yesterday" is not an RFC 3339 time`},
		{"bad output", []string{"--input", "testdata/oom-worker.json", "--output", "yaml"}, `podmedic: --output: unknown format "yaml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, append([]string{"replay"}, tc.args...)...)
			require.Equal(t, 1, code)
			require.Empty(t, out)
			require.True(t, strings.HasPrefix(errOut, tc.want), "stderr: %q", errOut)
			require.Equal(t, 1, strings.Count(errOut, "\n"), "one line, no stack trace: %q", errOut)
		})
	}
}

func TestReplayNotJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "garbage.json")
	require.NoError(t, os.WriteFile(p, []byte("pods:\n- x\n"), 0o600))
	code, _, errOut := cli(t, "replay", "--input", p)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not JSON at byte")
}

func TestCheck(t *testing.T) {
	code, out, _ := cli(t, "check", "../../rules.yaml")
	require.Equal(t, 0, code)
	require.Contains(t, out, "../../rules.yaml: ok (15 rules, 15 enabled; 3 schedules, 3 enabled)")

	bad := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: oom\n    detect:\n      kind: OOMKiled\n    actoin: {}\n"), 0o600))
	code, out, errOut := cli(t, "check", "--config", bad)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, bad+":5:13: rules[0].detect.kind:")
	require.Contains(t, errOut, bad+":6:5: rules[0].actoin: unknown field (did you mean action?)")
	require.Contains(t, errOut, "2 problem(s)")
}

func TestRunBadInputIsOneLine(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	code, _, errOut := cli(t, "run", "--kubeconfig", kc, "--data-dir", dir, "--http-addr", "")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "podmedic: cannot reach the Kubernetes API at https://127.0.0.1:1")

	code, _, errOut = cli(t, "run", "--kubeconfig", filepath.Join(dir, "missing"), "--http-addr", "")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "podmedic: kubeconfig:")
}

func TestVersion(t *testing.T) {
	code, out, _ := cli(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "podmedic "), out)
}
