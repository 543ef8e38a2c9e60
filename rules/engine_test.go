package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// always is a plugin whose detector fires for every pod.
func always(k finding.Kind, specificity int) Plugin {
	return Plugin{Kind: k, Object: config.ObjectPod, Specificity: specificity, New: func(config.Args) Detector {
		return DetectorFunc(func(in Input) []finding.Finding { return []finding.Finding{PodFinding(k, in.Pod, "")} })
	}}
}

func rule(name string, k finding.Kind, m config.Match) config.Rule {
	if m.LabelSelector == nil {
		m.LabelSelector = labels.Everything()
	}
	return config.Rule{Name: name, Detect: config.Detect{Kind: k, Args: &config.NoArgs{}}, Match: m}
}

func pod(ns, name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: lbls}}
}

func engine(t *testing.T, cfg *config.Config, plugins ...Plugin) *Engine {
	t.Helper()
	reg := NewRegistry()
	for _, p := range plugins {
		reg.Register(p)
	}
	e, err := NewEngine(cfg, reg, actions.MemoryPlanner{})
	require.NoError(t, err)
	return e
}

func rulesOf(fs []finding.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Rule+":"+string(f.Kind))
	}
	return out
}

func TestEngineFirstMatchingRulePerKind(t *testing.T) {
	sel, err := labels.Parse("team=data")
	require.NoError(t, err)
	cfg := &config.Config{Cluster: "c", Namespaces: config.NamespaceScope{Exclude: []string{"kube-system"}}, Rules: []config.Rule{
		{Name: "off", Disabled: true, Detect: config.Detect{Kind: finding.OOMKilled}},
		rule("oom-airflow", finding.OOMKilled, config.Match{Workload: config.WorkloadAirflow}),
		rule("oom-data", finding.OOMKilled, config.Match{LabelSelector: sel}),
		rule("oom-rest", finding.OOMKilled, config.Match{Namespaces: config.NamespaceScope{Exclude: []string{"sandbox"}}}),
	}}
	e := engine(t, cfg, always(finding.OOMKilled, 100))
	now := time.Now()
	for _, tc := range []struct {
		pod  *corev1.Pod
		want []string
	}{
		{pod("airflow", "w", map[string]string{"kubernetes_executor": "True", "team": "data"}), []string{"oom-airflow:OOMKilled"}},
		{pod("etl", "x", map[string]string{"team": "data"}), []string{"oom-data:OOMKilled"}},
		{pod("etl", "y", nil), []string{"oom-rest:OOMKilled"}},
		{pod("sandbox", "z", nil), []string{}},
		{pod("kube-system", "coredns", map[string]string{"kubernetes_executor": "True"}), []string{}},
	} {
		require.Equal(t, tc.want, rulesOf(e.EvaluatePod(tc.pod, nil, now)), tc.pod.Namespace+"/"+tc.pod.Name)
	}
}

func TestEngineKeepsTheMostSpecificFailure(t *testing.T) {
	cfg := &config.Config{Rules: []config.Rule{
		rule("failed", finding.TaskFailed, config.Match{}),
		rule("oom", finding.OOMKilled, config.Match{}),
		rule("sigkill", finding.SIGKILL, config.Match{}),
		rule("ratio", finding.LimitRatio, config.Match{}),
	}}
	e := engine(t, cfg, always(finding.TaskFailed, 10), always(finding.OOMKilled, 100), always(finding.SIGKILL, 90),
		always(finding.LimitRatio, 0))
	got := rulesOf(e.EvaluatePod(pod("a", "p", nil), nil, time.Now()))
	require.Equal(t, []string{"oom:OOMKilled", "ratio:LimitRatio"}, got, "one failure, one finding; advisories independent")
}

func TestEngineFillsRuleAndAction(t *testing.T) {
	gp := int64(30)
	r := rule("stuck", finding.InitStuck, config.Match{})
	r.Severity = finding.SeverityCritical
	r.Notify.Route = "oncall"
	r.Action = &config.RuleAction{Type: finding.ActionDeletePod, Params: config.ActionParams{GracePeriod: &gp}}
	n := rule("notify-only", finding.CrashLoop, config.Match{})
	n.Action = &config.RuleAction{Type: finding.ActionNotify, Mode: finding.ModeNotify}
	e := engine(t, &config.Config{Rules: []config.Rule{r, n}}, always(finding.InitStuck, 70), always(finding.CrashLoop, 0))
	fs := e.EvaluatePod(pod("spark", "driver", nil), nil, time.Now())
	require.Len(t, fs, 2)
	require.Equal(t, finding.SeverityCritical, fs[0].Severity)
	require.Equal(t, "oncall", fs[0].Route)
	require.Equal(t, &finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeApprove,
		Params: map[string]string{"grace_period": "30"}}, fs[0].Action)
	require.Equal(t, finding.SeverityWarning, fs[1].Severity)
	require.Nil(t, fs[1].Action, "a notify action is no action")
	require.Equal(t, []string{}, fs[1].Evidence, "evidence is never null in JSON")
}

func TestEngineRejectsAnUnregisteredKind(t *testing.T) {
	_, err := NewEngine(&config.Config{Rules: []config.Rule{rule("x", finding.SIGKILL, config.Match{})}}, NewRegistry(), actions.MemoryPlanner{})
	require.ErrorContains(t, err, `rule "x": no detector registered for kind SIGKILL`)
}

func TestEngineNeedsAPlannerForMemoryProposals(t *testing.T) {
	r := rule("oom", finding.OOMKilled, config.Match{})
	r.Action = &config.RuleAction{Type: finding.ActionProposeMemoryLimit, Mode: finding.ModeApprove}
	reg := NewRegistry()
	reg.Register(always(finding.OOMKilled, 100))
	_, err := NewEngine(&config.Config{Rules: []config.Rule{r}}, reg, nil)
	require.EqualError(t, err, `rule "oom": propose-memory-limit needs a memory planner`)
}

func TestEngineFixedChannelOverridesRoute(t *testing.T) {
	r := rule("oom", finding.OOMKilled, config.Match{})
	r.Notify = config.Notify{Route: "oncall", Channel: "#data-oom"}
	e := engine(t, &config.Config{Rules: []config.Rule{r}}, always(finding.OOMKilled, 100))
	fs := e.EvaluatePod(pod("a", "p", nil), nil, time.Now())
	require.Equal(t, "#data-oom", fs[0].Route)
}
