package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/podmedic/podmedic/finding"
)

// FuzzParse feeds arbitrary files to Parse. Seeds: every testdata fixture and the root
// rules.yaml (plus testdata/fuzz/FuzzParse). Run it with
//
//	go test ./config -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, rootRules)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		reg := testRegistry()
		cfg, err := Parse("fuzz.yaml", data, reg)
		if err != nil {
			checkErrors(t, data, err)
			// The same input gives the same report.
			_, again := Parse("fuzz.yaml", data, reg)
			if again == nil || again.Error() != err.Error() {
				t.Fatalf("second parse differs:\n%v\n---\n%v", err, again)
			}
			return
		}
		checkConfig(t, cfg, reg)

		// What Parse accepted, written back out, is accepted again.
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse("fuzz.yaml", out, reg)
		if err != nil {
			t.Fatalf("re-parse of\n%s\nfailed: %v", out, err)
		}
		checkConfig(t, again, reg)
	})
}

func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T %v, want non-empty Errors", err, err)
	}
	for i, e := range errs {
		if e.File != "fuzz.yaml" || e.Message == "" {
			t.Errorf("bad error %#v", e)
		}
		if len(data) > 0 && (e.Line < 1 || e.Column < 1) {
			t.Errorf("error without a position: %v", e)
		}
		if i > 0 {
			p := errs[i-1]
			if p.Line > e.Line || (p.Line == e.Line && p.Column > e.Column) {
				t.Errorf("errors out of file order: %v before %v", p, e)
			}
		}
	}
}

// checkConfig asserts what every successfully parsed Config guarantees to its users.
func checkConfig(t *testing.T, c *Config, reg Detectors) {
	t.Helper()
	if c == nil {
		t.Fatal("nil config without an error")
	}
	if c.Version != 1 || c.Cluster == "" || c.Slack.SocketMode == nil || c.Slack.APIURL == "" ||
		!slices.Contains(AirflowAPIVersions(), c.Airflow.APIVersion) || c.Airflow.Timeout.Duration <= 0 ||
		c.Proposals.TTL.Duration <= 0 || c.NATS.MaxMemory.Sign() <= 0 || c.NATS.MaxStore.Sign() <= 0 {
		t.Errorf("config without its defaults: %+v", c)
	}
	for _, b := range []*Budget{c.Budgets.Total, c.Budgets.PerNamespace} {
		if b != nil && (b.Max < 1 || b.Window.Duration <= 0) {
			t.Errorf("invalid budget %+v", b)
		}
	}
	if len(c.Rules) == 0 {
		t.Error("no rules")
	}
	names := map[string]bool{}
	for _, r := range c.Rules {
		if r.Name == "" || names[r.Name] {
			t.Errorf("empty or duplicate rule name %q", r.Name)
		}
		names[r.Name] = true
		if _, ok := reg.Spec(r.Detect.Kind); !ok {
			t.Errorf("rule %s: unregistered kind %q", r.Name, r.Detect.Kind)
		}
		if r.Detect.Args == nil || r.Match.LabelSelector == nil {
			t.Errorf("rule %s: nil args or label selector", r.Name)
		}
		if !slices.Contains(finding.Severities(), r.Severity) || !slices.Contains(Workloads(), r.Match.Workload) {
			t.Errorf("rule %s: severity %q, workload %q", r.Name, r.Severity, r.Match.Workload)
		}
		if a := r.Action; a != nil {
			if !a.Type.Valid() || !slices.Contains(finding.Modes(), a.Mode) {
				t.Errorf("rule %s: action %q mode %q", r.Name, a.Type, a.Mode)
			}
			if a.Params.Force && (a.Type != finding.ActionDeletePod || a.Mode != finding.ModeApprove) {
				t.Errorf("rule %s: force with %s in mode %s", r.Name, a.Type, a.Mode)
			}
			if a.Type == finding.ActionProposeMemoryLimit && (a.Params.BumpRatio == nil || !(*a.Params.BumpRatio > 1) ||
				math.IsInf(*a.Params.BumpRatio, 0) || a.Params.MaxLimitRequestRatio == nil ||
				!(*a.Params.MaxLimitRequestRatio >= 1) || math.IsInf(*a.Params.MaxLimitRequestRatio, 0) ||
				a.Params.MinBump == nil || a.Params.MinBump.Sign() <= 0 || a.Params.MaxLimit == nil || a.Params.MaxLimit.Sign() <= 0) {
				t.Errorf("rule %s: memory params %+v", r.Name, a.Params)
			}
			if a.Type == finding.ActionAirflowClearTask && (a.Params.OnlyFailed == nil || c.Airflow.URL == "") {
				t.Errorf("rule %s: airflow-clear-task without only_failed or airflow.url", r.Name)
			}
		}
	}
}
