package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podmedic/podmedic/finding"
)

var update = flag.Bool("update", false, "rewrite the .errors golden files of testdata/bad")

// initStuckArgs stands in for a detector with a threshold.
type initStuckArgs struct {
	InitTimeout Duration `yaml:"init_timeout"`
}

func (a *initStuckArgs) Validate() []FieldError {
	if a.InitTimeout.Duration <= 0 {
		return []FieldError{{Field: "init_timeout", Message: "must be greater than 0"}}
	}
	return nil
}

// taskFailedArgs stands in for a detector with several thresholds of several types.
type taskFailedArgs struct {
	MinTries   int      `yaml:"min_tries"`
	Reasons    []string `yaml:"reasons"`
	MaxRuntime Duration `yaml:"max_runtime"`
}

func (a *taskFailedArgs) Validate() []FieldError {
	var errs []FieldError
	if a.MinTries < 1 {
		errs = append(errs, FieldError{Field: "min_tries", Message: "must be at least 1"})
	}
	for _, r := range a.Reasons {
		if r == "" {
			errs = append(errs, FieldError{Field: "reasons", Message: "must not hold an empty reason"})
		}
	}
	return errs
}

// testRegistry lists fake detector specs so that these tests do not depend on the real ones.
func testRegistry() Specs {
	return Specs{
		{Kind: finding.OOMKilled, Object: ObjectPod},
		{Kind: finding.InitStuck, Object: ObjectPod,
			DefaultArgs: func() Args { return &initStuckArgs{InitTimeout: Duration{15 * time.Minute}} }},
		{Kind: finding.TaskFailed, Object: ObjectPod,
			DefaultArgs: func() Args { return &taskFailedArgs{MinTries: 1} }},
	}
}

func fixtures(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// TestLoadBad loads every bad fixture and compares the errors with the golden x.errors file
// next to x.yaml (go test ./rules -run TestLoadBad -update rewrites them).
func TestLoadBad(t *testing.T) {
	for _, file := range fixtures(t, "bad") {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			cfg, err := Load(file, testRegistry())
			require.Error(t, err)
			assert.Nil(t, cfg)
			var errs Errors
			require.True(t, errors.As(err, &errs), "error is %T, want Errors", err)

			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".errors"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)

			for _, e := range errs {
				assert.Equal(t, file, e.File)
				assert.GreaterOrEqual(t, e.Line, 1, e.Error())
				assert.GreaterOrEqual(t, e.Column, 1, e.Error())
			}
		})
	}
}

func TestLoadGood(t *testing.T) {
	for _, file := range fixtures(t, "good") {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			cfg, err := Load(file, testRegistry())
			require.NoError(t, err)
			assert.Equal(t, file, cfg.File)
			for _, r := range cfg.Rules {
				assert.NotNil(t, r.Match.LabelSelector, r.Name)
				assert.NotNil(t, r.Detect.Args, r.Name)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load("testdata/good/minimal.yaml", testRegistry())
	require.NoError(t, err)

	assert.Equal(t, 1, cfg.Version)
	assert.Equal(t, "default", cfg.Cluster)
	assert.False(t, cfg.DryRun)
	assert.Equal(t, 30*time.Minute, cfg.Cooldown.Duration)
	assert.Equal(t, 30*time.Minute, cfg.Proposals.TTL.Duration)
	assert.Equal(t, "64Mi", cfg.NATS.MaxMemory.String())
	assert.Equal(t, "1Gi", cfg.NATS.MaxStore.String())
	assert.Equal(t, "https://slack.com/api/", cfg.Slack.APIURL)
	require.NotNil(t, cfg.Slack.SocketMode)
	assert.True(t, *cfg.Slack.SocketMode)
	assert.Equal(t, "v1", cfg.Airflow.APIVersion)
	assert.Equal(t, 10*time.Second, cfg.Airflow.Timeout.Duration)
	assert.Nil(t, cfg.Budgets.Total)

	require.Len(t, cfg.Rules, 1)
	r := cfg.Rules[0]
	assert.Equal(t, finding.SeverityWarning, r.Severity)
	assert.Equal(t, WorkloadAny, r.Match.Workload)
	assert.Equal(t, labels.Everything(), r.Match.LabelSelector)
	assert.Equal(t, &NoArgs{}, r.Detect.Args)
	assert.Nil(t, r.Action, "no action block: notify only")
}

func TestLoadActionDefaults(t *testing.T) {
	cfg, err := Parse("rules.yaml", []byte(`
version: 1
airflow: {url: "http://airflow:8080"}
rules:
  - {name: a, detect: {kind: OOMKilled}, action: {type: propose-memory-limit}}
  - {name: b, detect: {kind: OOMKilled}, action: {type: airflow-clear-task}}
  - {name: c, detect: {kind: OOMKilled}, action: {type: notify}}
  - {name: d, detect: {kind: OOMKilled}, action: {type: delete-pod}}
  - {name: e, detect: {kind: InitStuck}}
`), testRegistry())
	require.NoError(t, err)

	a := cfg.Rules[0].Action
	assert.Equal(t, finding.ModeApprove, a.Mode)
	assert.Equal(t, 1.5, *a.Params.BumpRatio)
	assert.Equal(t, "256Mi", a.Params.MinBump.String())
	assert.Equal(t, "16Gi", a.Params.MaxLimit.String())
	assert.Equal(t, 1.5, *a.Params.MaxLimitRequestRatio)
	assert.Nil(t, a.Params.OnlyFailed)

	b := cfg.Rules[1].Action
	assert.Equal(t, finding.ModeApprove, b.Mode)
	require.NotNil(t, b.Params.OnlyFailed)
	assert.True(t, *b.Params.OnlyFailed)
	assert.Nil(t, b.Params.BumpRatio)

	assert.Equal(t, finding.ModeNotify, cfg.Rules[2].Action.Mode)

	d := cfg.Rules[3].Action
	assert.Equal(t, finding.ModeApprove, d.Mode)
	assert.Equal(t, ActionParams{}, d.Params, "delete-pod has no defaulted params")

	assert.Equal(t, &initStuckArgs{InitTimeout: Duration{15 * time.Minute}}, cfg.Rules[4].Detect.Args)
}

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml", testRegistry())
	require.NoError(t, err)

	assert.Equal(t, "prod-eu-1", cfg.Cluster)
	assert.True(t, cfg.DryRun)
	assert.Equal(t, NamespaceScope{Include: []string{"airflow", "spark-jobs"}, Exclude: []string{"kube-system"}}, cfg.Namespaces)
	assert.Equal(t, &Budget{Max: 50, Window: Duration{time.Hour}}, cfg.Budgets.Total)
	assert.Equal(t, &Budget{Max: 20, Window: Duration{time.Hour}}, cfg.Budgets.PerNamespace)
	assert.Equal(t, 45*time.Minute, cfg.Cooldown.Duration)
	assert.Equal(t, time.Hour, cfg.Proposals.TTL.Duration)
	assert.Equal(t, "128Mi", cfg.NATS.MaxMemory.String())
	assert.Equal(t, "2Gi", cfg.NATS.MaxStore.String())
	assert.Equal(t, "http://127.0.0.1:8099/api/", cfg.Slack.APIURL)
	assert.Equal(t, "#data-platform-alerts", cfg.Slack.DefaultChannel)
	assert.False(t, *cfg.Slack.SocketMode)
	assert.Equal(t, Approvers{Users: []string{"U012AB3CD"}, Groups: []string{"S0614TZR7"}}, cfg.Slack.Approvers)
	assert.Equal(t, []Route{
		{Name: "oncall", Channel: "#data-oncall", Severities: []finding.Severity{"critical", "warning"}, Namespaces: []string{"airflow"}},
		{Name: "info", Channel: "#data-platform"},
	}, cfg.Slack.Routes)
	assert.Equal(t, AirflowConfig{URL: "https://airflow.example.com", APIVersion: "v2", Timeout: Duration{30 * time.Second}}, cfg.Airflow)

	require.Len(t, cfg.Rules, 5)
	oom := cfg.Rules[0]
	assert.Equal(t, "oom", oom.Name)
	assert.Equal(t, finding.SeverityCritical, oom.Severity)
	assert.Equal(t, "team=data,tier!=dev", oom.Match.LabelSelector.String())
	assert.True(t, oom.Match.LabelSelector.Matches(labels.Set{"team": "data", "tier": "prod"}))
	assert.False(t, oom.Match.LabelSelector.Matches(labels.Set{"team": "data", "tier": "dev"}))
	assert.Equal(t, WorkloadAirflow, oom.Match.Workload)
	assert.Equal(t, finding.ActionProposeMemoryLimit, oom.Action.Type)
	assert.Equal(t, 2.0, *oom.Action.Params.BumpRatio)
	assert.Equal(t, "512Mi", oom.Action.Params.MinBump.String())
	assert.Equal(t, "32Gi", oom.Action.Params.MaxLimit.String())
	assert.Equal(t, 1.25, *oom.Action.Params.MaxLimitRequestRatio)
	assert.Equal(t, &Budget{Max: 5, Window: Duration{time.Hour}}, oom.Action.Budget)
	assert.Equal(t, &Duration{2 * time.Hour}, oom.Action.Cooldown)
	assert.Equal(t, "oncall", oom.Notify.Route)

	stuck := cfg.Rules[1]
	assert.True(t, stuck.Disabled)
	assert.Equal(t, &initStuckArgs{InitTimeout: Duration{20 * time.Minute}}, stuck.Detect.Args)
	assert.True(t, stuck.Action.Params.Force)

	evict := cfg.Rules[2]
	assert.Equal(t, finding.ModeAuto, evict.Action.Mode)
	assert.Equal(t, int64(30), *evict.Action.Params.GracePeriod)
	assert.Equal(t, "#spark", evict.Notify.Channel)

	retry := cfg.Rules[3]
	assert.Equal(t, finding.ModeNotify, retry.Action.Mode)
	assert.False(t, *retry.Action.Params.OnlyFailed)
}

func TestLoadAnchors(t *testing.T) {
	cfg, err := Load("testdata/good/anchors.yaml", testRegistry())
	require.NoError(t, err)
	require.Len(t, cfg.Rules, 2)
	dev := cfg.Rules[1]
	assert.Equal(t, WorkloadAirflow, dev.Match.Workload, "merged from *airflow")
	assert.Equal(t, []string{"airflow-dev"}, dev.Match.Namespaces.Include, "own key overrides the merged one")
	assert.Equal(t, 2.0, *dev.Action.Params.BumpRatio)
	assert.Equal(t, "oncall", dev.Notify.Route)
	assert.NotSame(t, cfg.Rules[0].Action, dev.Action, "each rule has its own action")
}

// TestLoadExplicitZero shows that a key set to a zero value is validated, not defaulted.
func TestLoadExplicitZero(t *testing.T) {
	cfg, err := Parse("rules.yaml", []byte("version: 1\ncooldown: 0s\nrules: [{name: a, detect: {kind: OOMKilled}}]\n"), testRegistry())
	require.NoError(t, err)
	assert.Zero(t, cfg.Cooldown.Duration, "cooldown: 0s turns the cooldown off")

	_, err = Parse("rules.yaml", []byte("version: 1\ncluster: ''\nairflow: {timeout: 0s}\nrules: [{name: a, severity: '', detect: {kind: OOMKilled}}]\n"), testRegistry())
	assert.EqualError(t, err, `rules.yaml:2:10: cluster: invalid cluster name "": use letters, digits, '-' and '_', starting and ending with a letter or digit (at most 63 characters)
rules.yaml:3:20: airflow.timeout: must be greater than 0
rules.yaml:4:29: rules[0].severity: invalid severity "" (valid: info, warning, critical)`)
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", testRegistry())
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

func TestParseNilRegistry(t *testing.T) {
	_, err := Parse("rules.yaml", []byte("version: 1\nrules: [{name: a, detect: {kind: OOMKilled}}]\n"), nil)
	assert.EqualError(t, err, "rules.yaml:2:34: rules[0].detect.kind: no detector is registered for kind OOMKilled (registered kinds: none)")
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "rules.yaml", Line: 14, Column: 7, Path: "rules[1].action.params.bump_ratoi", Message: "unknown field"},
			"rules.yaml:14:7: rules[1].action.params.bump_ratoi: unknown field"},
		{Error{File: "rules.yaml", Line: 1, Column: 1, Message: "the file is empty"}, "rules.yaml:1:1: the file is empty"},
		{Error{Path: "version", Message: "required"}, "version: required"},
		{Error{File: "rules.yaml", Message: "required"}, "rules.yaml: required"},
	} {
		assert.Equal(t, tc.want, tc.err.Error())
	}

	errs := Errors{{File: "a", Line: 1, Column: 2, Message: "x"}, {File: "a", Line: 3, Column: 4, Path: "p", Message: "y"}}
	assert.Equal(t, "a:1:2: x\na:3:4: p: y", errs.Error())
	var one *Error
	require.True(t, errors.As(error(errs), &one))
	assert.Equal(t, "x", one.Message)
}

func TestClosest(t *testing.T) {
	known := []string{"grace_period", "force", "bump_ratio", "min_bump", "max_limit", "max_limit_request_ratio", "only_failed"}
	for in, want := range map[string]string{
		"bump_ratoi":     "bump_ratio",
		"bumpRatio":      "bump_ratio",
		"BUMP_RATIO":     "bump_ratio",
		"max-limit":      "max_limit",
		"forse":          "force",
		"min_bmp":        "min_bump",
		"onlyfailed":     "only_failed",
		"grace":          "",
		"timeout":        "",
		"x":              "",
		"max_limit_req":  "",
		"grace_periods":  "grace_period",
		"gracee_periodd": "grace_period",
	} {
		assert.Equal(t, want, closest(in, known), in)
	}
}

// TestRootRulesYAML loads the root rules.yaml with the detectors podmedic ships. Where it
// writes out a default, the value must be the default.
func TestRootRulesYAML(t *testing.T) {
	cfg, err := Load(rootRules, DefaultRegistry())
	require.NoError(t, err)

	assert.Equal(t, DefaultCluster, cfg.Cluster)
	assert.Equal(t, DefaultCooldown, cfg.Cooldown.Duration)
	assert.Equal(t, DefaultProposalTTL, cfg.Proposals.TTL.Duration)
	assert.Equal(t, DefaultNATSMaxMemory, cfg.NATS.MaxMemory.String())
	assert.Equal(t, DefaultNATSMaxStore, cfg.NATS.MaxStore.String())
	assert.Equal(t, DefaultSlackAPIURL, cfg.Slack.APIURL)
	assert.True(t, *cfg.Slack.SocketMode)
	assert.Equal(t, DefaultAirflowVersion, cfg.Airflow.APIVersion)
	assert.Equal(t, DefaultAirflowTimeout, cfg.Airflow.Timeout.Duration)

	assert.Equal(t, "#data-platform-alerts", cfg.Slack.DefaultChannel)
	assert.Equal(t, []Route{{Name: "oncall", Channel: "#data-oncall",
		Severities: []finding.Severity{finding.SeverityCritical, finding.SeverityWarning}}}, cfg.Slack.Routes)
	assert.Equal(t, "http://airflow-webserver.airflow.svc:8080", cfg.Airflow.URL)
	assert.Equal(t, &Budget{Max: 50, Window: Duration{time.Hour}}, cfg.Budgets.Total)
	assert.Equal(t, &Budget{Max: 20, Window: Duration{time.Hour}}, cfg.Budgets.PerNamespace)
	assert.Equal(t, []string{"kube-system"}, cfg.Namespaces.Exclude)

	byName := map[string]Rule{}
	for _, r := range cfg.Rules {
		byName[r.Name] = r
	}
	oom, ok := byName["oom"]
	require.True(t, ok, "rule oom")
	assert.Equal(t, finding.OOMKilled, oom.Detect.Kind)
	assert.Equal(t, WorkloadAirflow, oom.Match.Workload)
	assert.Equal(t, finding.ActionProposeMemoryLimit, oom.Action.Type)
	assert.Equal(t, finding.ModeApprove, oom.Action.Mode)
	assert.Equal(t, DefaultBumpRatio, *oom.Action.Params.BumpRatio)
	assert.Equal(t, DefaultMinBump, oom.Action.Params.MinBump.String())
	assert.Equal(t, DefaultMaxLimit, oom.Action.Params.MaxLimit.String())
	assert.Equal(t, DefaultMaxLimitRequestRatio, *oom.Action.Params.MaxLimitRequestRatio)
	assert.Equal(t, "oncall", oom.Notify.Route)
}
