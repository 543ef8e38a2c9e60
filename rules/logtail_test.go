package rules

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/finding"
)

func TestBoundLines(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	got := boundLines([]byte(b.String()), 20, 4096)
	require.Len(t, got, 20)
	require.Equal(t, "line 31", got[0])
	require.Equal(t, "line 50", got[19])

	long := strings.Repeat("x", 3000)
	got = boundLines([]byte("a\n"+long+"\n"+long+"\nlast\n"), 20, 4096)
	require.Equal(t, []string{long, "last"}, got, "at most 4 KiB in all")
}

func TestLogTailerEnrichesTaskFailedOnly(t *testing.T) {
	l := &LogTailer{Client: fake.NewClientset()} // the fake log API answers "fake logs"
	f := &finding.Finding{Kind: finding.TaskFailed, Namespace: "airflow", Pod: "p", Container: "base", Evidence: []string{"exit 1"}}
	l.enrich(context.Background(), f, nil)
	require.Equal(t, []string{"exit 1", "last log lines of base:", "  | fake logs"}, f.Evidence)

	o := &finding.Finding{Kind: finding.OOMKilled, Namespace: "airflow", Pod: "p", Container: "base"}
	l.enrich(context.Background(), o, nil)
	require.Empty(t, o.Evidence)
}
