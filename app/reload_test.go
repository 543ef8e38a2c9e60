package app

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

const rulesV1 = "version: 1\nrules:\n  - name: oom\n    detect: {kind: OOMKilled}\n"

func TestReloadKeepsRunningRulesWhenInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(rulesV1), 0o600))
	reg := rules.NewDefaultRegistry()
	cfg, err := config.Load(path, reg)
	require.NoError(t, err)
	core, logs := observer.New(zapcore.InfoLevel)
	var applied []*config.Config
	r, err := newReloader(path, cfg, reg, func(c *config.Config) error { applied = append(applied, c); return nil },
		zap.New(core), prometheus.NewRegistry())
	require.NoError(t, err)

	r.reload(false)
	require.Empty(t, applied, "unchanged file: nothing to do")

	// An invalid file: reported with its problems, not applied.
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nrules:\n  - name: oom\n    detect: {kind: OOMKiled}\n"), 0o600))
	r.reload(false)
	require.Empty(t, applied)
	require.Equal(t, 0.0, testutil.ToFloat64(r.success))
	require.Equal(t, 1.0, testutil.ToFloat64(r.reloads.WithLabelValues("failure")))
	entry := logs.FilterMessage("rules.yaml is invalid; the running rules stay in force").All()
	require.Len(t, entry, 1)
	require.Contains(t, fmt.Sprint(entry[0].ContextMap()["problems"]), "rules.yaml:4:20: rules[0].detect.kind: unknown kind")

	// A valid one takes effect; settings that need a restart keep their running values.
	require.NoError(t, os.WriteFile(path, []byte("version: 1\ncluster: other\nrules:\n  - name: oom\n    detect: {kind: OOMKilled}\n  - name: sigkill\n    detect: {kind: SIGKILL}\n"), 0o600))
	r.reload(false)
	require.Len(t, applied, 1)
	require.Len(t, applied[0].Rules, 2)
	require.Equal(t, "default", applied[0].Cluster, "cluster needs a restart")
	require.Equal(t, 1.0, testutil.ToFloat64(r.success))
	require.Len(t, logs.FilterMessage("rules.yaml changed settings that take effect only after a restart; they keep their running values").All(), 1)

	// SIGHUP reloads even an unchanged file.
	r.reload(true)
	require.Len(t, applied, 2)
}
