package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// laughs is a small rules file whose aliases expand into rules x names nodes: every rule is
// the first one, whose exclusion list holds the same namespace names times.
func laughs(rules, names int) string {
	var b strings.Builder
	b.WriteString("version: 1\nnamespaces:\n  exclude: &ns [&s kube-system" + strings.Repeat(", *s", names-1) + "]\n")
	b.WriteString("rules:\n  - &r {name: a, detect: {kind: OOMKilled}, match: {namespaces: {exclude: *ns}}}\n")
	b.WriteString(strings.Repeat("  - *r\n", rules-1))
	return b.String()
}

// TestCheckRefusesOversizedAndExplodingFiles: `podmedic check` refuses a rules file over 1 MiB
// and one whose aliases expand past the node limit, each with a clear message.
func TestCheckRefusesOversizedAndExplodingFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, []byte("version: 1\n# "+strings.Repeat("x", 1<<20)+"\n"), 0o600))
	code, _, errOut := cli(t, "check", big)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, big+": the file is larger than 1024 KiB")

	bomb := filepath.Join(dir, "bomb.yaml")
	doc := laughs(20_000, 10_000) // 2*10^8 nodes from 200 KB
	require.Less(t, len(doc), 256<<10)
	require.NoError(t, os.WriteFile(bomb, []byte(doc), 0o600))
	code, _, errOut = cli(t, "check", bomb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "the document expands into too many nodes (aliases nested too deep): at most 100000 are read")
}

// TestCheckRefusesCredentialsInURLs: a password in airflow.url is refused, and the refusal
// does not repeat it (check's output goes to CI logs).
func TestCheckRefusesCredentialsInURLs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`version: 1
airflow:
  url: http://admin:hunter2@airflow-webserver.airflow.svc:8080
rules:
  - {name: failed, detect: {kind: TaskFailed}, action: {type: airflow-clear-task}}
`), 0o600))
	code, out, errOut := cli(t, "check", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, path+":3:8: airflow.url: the URL http://airflow-webserver.airflow.svc:8080 carries credentials (user:password@)")
	assert.Contains(t, errOut, "set AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN")
	assert.NotContains(t, out+errOut, "hunter2")
}
