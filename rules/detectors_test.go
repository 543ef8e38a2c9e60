package rules

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// Helpers shared by the detector tests. The fixtures in testdata/pods and testdata/replay are
// `kubectl get pods,pvc,events -o json` style Lists of one night of incidents; their clock is
// nightNow.

var nightNow = mustTime("2026-11-20T02:30:00Z")

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// updatingGolden reports whether the test binary runs with -update (the flag is defined once
// for the package, by the config tests).
func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func loadFixture(t testing.TB, path string) *Dump {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	d := &Dump{}
	require.NoError(t, d.ReadDump(f), path)
	return d
}

func fixturePod(t testing.TB, d *Dump, namespace, name string) *corev1.Pod {
	t.Helper()
	return fixtureObject(t, d.Pods, "pod", namespace, name)
}

func fixturePVC(t testing.TB, d *Dump, namespace, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	return fixtureObject(t, d.PVCs, "PVC", namespace, name)
}

// fixtureObject is the object of a fixture named namespace/name (what: its kind, for the failure).
func fixtureObject[T metav1.Object](t testing.TB, objs []T, what, namespace, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	require.FailNow(t, "no such "+what+" in the fixture", "%s/%s", namespace, name)
	var zero T
	return zero
}

// wantFinding is what a detector table test expects of one finding.
type wantFinding struct {
	container string
	evidence  []string // lines the evidence must hold exactly
	mentions  []string // substrings some evidence line must hold
}

// detectorCase is one row of a detector table test: an object of a fixture, the findings
// expected of it, and substrings no evidence may hold (someone else's events, ...).
type detectorCase struct {
	name      string
	namespace string
	pod, pvc  string
	now       time.Time // default nightNow
	want      []wantFinding
	absent    []string
}

// runDetectorCases runs a plugin's detector, with args (nil: its defaults), over the cases.
// Each case is evaluated twice, at now and two minutes later, and must give the same findings
// with the same keys: resyncs do not make new findings.
func runDetectorCases(t *testing.T, p Plugin, args config.Args, fixture string, cases []detectorCase) {
	t.Helper()
	d := loadFixture(t, fixture)
	if args == nil && p.DefaultArgs != nil {
		args = p.DefaultArgs()
	}
	det := p.New(args)
	view := d.View()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = nightNow
			}
			in := Input{View: view, Now: now}
			var meta *metav1.ObjectMeta
			if tc.pvc != "" {
				in.PVC = fixturePVC(t, d, tc.namespace, tc.pvc)
				meta = &in.PVC.ObjectMeta
			} else {
				in.Pod = fixturePod(t, d, tc.namespace, tc.pod)
				meta = &in.Pod.ObjectMeta
			}
			got := det.Detect(in)
			require.Len(t, got, len(tc.want), "findings: %s", describeFindings(got))
			for i, w := range tc.want {
				f := got[i]
				assert.Equal(t, p.Kind, f.Kind)
				assert.Equal(t, tc.namespace, f.Namespace)
				assert.Equal(t, tc.pod, f.Pod)
				assert.Equal(t, tc.pvc, f.PVC)
				assert.Equal(t, w.container, f.Container)
				if p.Kind != finding.LimitRatio { // per owner, not per pod: see limitratio.go
					assert.Equal(t, string(meta.UID), f.UID)
				}
				assert.NotEmpty(t, f.Occurrence, "occurrence")
				for _, line := range w.evidence {
					assert.Contains(t, f.Evidence, line)
				}
				for _, s := range w.mentions {
					assert.True(t, anyContains(f.Evidence, s), "no evidence line mentions %q:\n%s", s, strings.Join(f.Evidence, "\n"))
				}
				for _, line := range f.Evidence {
					assert.NotContains(t, line, "unknown time")
				}
			}
			for _, f := range got {
				for _, s := range tc.absent {
					assert.False(t, anyContains(f.Evidence, s), "evidence mentions %q:\n%s", s, strings.Join(f.Evidence, "\n"))
				}
			}

			later := in
			later.Now = now.Add(2 * time.Minute)
			again := det.Detect(later)
			require.Len(t, again, len(got), "two minutes later")
			for i := range got {
				assert.Equal(t, got[i].Occurrence, again[i].Occurrence)
				assert.Equal(t, got[i].Key(), again[i].Key())
			}
		})
	}
}

func anyContains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func describeFindings(fs []finding.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n%s %s: %s", f.Kind, f.Name(), strings.Join(f.Evidence, " | "))
	}
	return b.String()
}

// allRules enables every registered detector with its default thresholds, for every object.
func allRules(t testing.TB, reg *Registry) *config.Config {
	t.Helper()
	cfg := &config.Config{Version: 1}
	for _, k := range finding.Kinds() {
		p, ok := reg.Lookup(k)
		require.True(t, ok, "%s is not registered", k)
		cfg.Rules = append(cfg.Rules, config.Rule{
			Name:     strings.ToLower(string(k)),
			Severity: finding.SeverityWarning,
			Detect:   config.Detect{Kind: k, Args: p.DefaultArgs()},
			Match:    config.Match{LabelSelector: labels.Everything()},
		})
	}
	return cfg
}

func allRulesEngine(t testing.TB) *Engine {
	t.Helper()
	reg := NewDefaultRegistry()
	e, err := NewEngine(allRules(t, reg), reg, actions.MemoryPlanner{})
	require.NoError(t, err)
	return e
}

// goldenLine is what the golden file compares of a finding: kind, namespace, pod or PVC, and
// container.
func goldenLine(f finding.Finding) string {
	s := fmt.Sprintf("%-17s namespace=%s", f.Kind, f.Namespace)
	if f.PVC != "" {
		s += " pvc=" + f.PVC
	} else {
		s += " pod=" + f.Pod
	}
	if f.Container != "" {
		s += " container=" + f.Container
	}
	return s
}

func TestDefaultRegistry(t *testing.T) {
	reg := NewDefaultRegistry()
	specificity := map[finding.Kind]int{
		finding.OOMKilled: 100, finding.SIGKILL: 90, finding.Evicted: 80, finding.InitStuck: 70,
		finding.VolumeMountFailed: 65, finding.Unschedulable: 60, finding.StuckTerminating: 55,
		finding.CrashLoop: 50, finding.TaskFailed: 10, finding.LimitRatio: 0, finding.PVCPending: 0,
		finding.SparkAppFailed: 0,
	}
	require.Len(t, reg.Kinds(), len(finding.Kinds()), "one detector per finding kind")
	for _, k := range finding.Kinds() {
		p, ok := reg.Lookup(k)
		require.True(t, ok, "%s is not registered", k)
		assert.Equal(t, specificity[k], p.Specificity, "specificity of %s", k)
		object := config.ObjectPod
		switch k {
		case finding.PVCPending:
			object = config.ObjectPVC
		case finding.SparkAppFailed:
			object = config.ObjectSparkApp
		}
		assert.Equal(t, object, p.Object, "object of %s", k)
		args := p.DefaultArgs()
		assert.Empty(t, args.Validate(), "the defaults of %s are valid", k)
		if _, none := args.(*config.NoArgs); !none { // pointers to zero-size structs may all be equal
			assert.NotSame(t, args, p.DefaultArgs(), "DefaultArgs of %s returns a new struct each time", k)
		}
		assert.NotNil(t, p.New(args), k)
		assert.NotNil(t, p.New(nil), "%s builds with the defaults when a rule gives none", k)
	}
}

// TestThresholdsDecode: the thresholds of every detector decode from a rules.yaml detect block
// under their documented keys, and bad values are reported under those keys.
func TestThresholdsDecode(t *testing.T) {
	cfg, err := config.Parse("rules.yaml", []byte(`version: 1
rules:
  - {name: init, detect: {kind: InitStuck, init_timeout: 20m}}
  - {name: pvc, detect: {kind: PVCPending, pvc_pending_timeout: 30m}}
  - {name: mount, detect: {kind: VolumeMountFailed, min_failures: 5, window: 15m}}
  - {name: crash, detect: {kind: CrashLoop, min_restarts: 3}}
  - {name: term, detect: {kind: StuckTerminating, terminating_timeout: 1h}}
  - {name: sched, detect: {kind: Unschedulable, unschedulable_timeout: 5m}}
  - {name: ratio, detect: {kind: LimitRatio, max_limit_request_ratio: 2}}
  - {name: kill, detect: {kind: SIGKILL}}
`), NewDefaultRegistry())
	require.NoError(t, err)
	want := []config.Args{
		&InitStuckArgs{InitTimeout: config.Duration{Duration: 20 * time.Minute}},
		&PVCPendingArgs{PVCPendingTimeout: config.Duration{Duration: 30 * time.Minute}},
		&VolumeMountFailedArgs{MinFailures: 5, Window: config.Duration{Duration: 15 * time.Minute}},
		&CrashLoopArgs{MinRestarts: 3},
		&StuckTerminatingArgs{TerminatingTimeout: config.Duration{Duration: time.Hour}},
		&UnschedulableArgs{UnschedulableTimeout: config.Duration{Duration: 5 * time.Minute}},
		&LimitRatioArgs{MaxLimitRequestRatio: 2},
		&config.NoArgs{},
	}
	for i, w := range want {
		assert.Equal(t, w, cfg.Rules[i].Detect.Args, cfg.Rules[i].Name)
	}

	_, err = config.Parse("rules.yaml", []byte(`version: 1
rules:
  - {name: mount, detect: {kind: VolumeMountFailed, min_failures: 0, window: 0s}}
  - {name: ratio, detect: {kind: LimitRatio, max_limit_request_ratio: 0.5}}
`), NewDefaultRegistry())
	require.Error(t, err)
	for _, s := range []string{
		"rules[0].detect.min_failures: must be at least 1",
		"rules[0].detect.window: must be greater than 0",
		"rules[1].detect.max_limit_request_ratio: must be a number of at least 1",
	} {
		assert.Contains(t, err.Error(), s)
	}
}

func TestTerminationOccurrenceSurvivesRestart(t *testing.T) {
	term := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled",
		FinishedAt: metav1.NewTime(mustTime("2026-11-20T02:13:09Z"))}
	// The kubelet first reports the termination as the current state, then, once the
	// container has restarted, as the last state with one more restart.
	before := corev1.ContainerStatus{Name: "base", RestartCount: 3, State: corev1.ContainerState{Terminated: term}}
	after := corev1.ContainerStatus{Name: "base", RestartCount: 4,
		State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: corev1.ContainerState{Terminated: term}}
	assert.Equal(t, "2026-11-20T02:13:09Z/3", terminationOccurrence(before, before.State.Terminated))
	assert.Equal(t, terminationOccurrence(before, before.State.Terminated), terminationOccurrence(after, after.LastTerminationState.Terminated))

	// The same through the OOM detector.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "p", UID: "u"}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{before}
	first := OOMDetector{}.Detect(Input{Pod: pod, Now: nightNow})
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{after}
	second := OOMDetector{}.Detect(Input{Pod: pod, Now: nightNow})
	require.Len(t, first, 1)
	require.Len(t, second, 1)
	assert.Equal(t, first[0].Key(), second[0].Key())
}

func TestEventsWithin(t *testing.T) {
	e := &corev1.Event{Count: 20,
		FirstTimestamp: metav1.NewTime(mustTime("2026-11-20T01:50:00Z")),
		LastTimestamp:  metav1.NewTime(mustTime("2026-11-20T02:30:00Z"))}
	assert.Equal(t, 20, eventsWithin(e, mustTime("2026-11-20T01:00:00Z"), nightNow), "all of them")
	assert.Equal(t, 5, eventsWithin(e, mustTime("2026-11-20T02:20:00Z"), nightNow), "a quarter of the span")
	assert.Equal(t, 0, eventsWithin(e, mustTime("2026-11-20T02:31:00Z"), mustTime("2026-11-20T02:41:00Z")), "after the last")
	one := &corev1.Event{Count: 1, LastTimestamp: metav1.NewTime(mustTime("2026-11-20T02:25:00Z"))}
	assert.Equal(t, 1, eventsWithin(one, mustTime("2026-11-20T02:20:00Z"), nightNow))
	series := &corev1.Event{EventTime: metav1.NewMicroTime(mustTime("2026-11-20T02:05:00Z")),
		Series: &corev1.EventSeries{Count: 12, LastObservedTime: metav1.NewMicroTime(mustTime("2026-11-20T02:29:00Z"))}}
	assert.Equal(t, 12, eventCount(series))
	assert.Equal(t, mustTime("2026-11-20T02:29:00Z"), eventLastSeen(series).UTC())
}

// TestReplayBadNight replays a whole night of incidents with every detector enabled: one
// finding per failed pod, of its most specific kind, plus the PVC and the advisories.
func TestReplayBadNight(t *testing.T) {
	d := loadFixture(t, "testdata/replay/bad-night.json")
	e := allRulesEngine(t)
	got := Replay(e, d, nightNow)

	var b strings.Builder
	for _, f := range got {
		b.WriteString(goldenLine(f))
		b.WriteByte('\n')
	}
	const golden = "testdata/replay/bad-night.golden"
	if updatingGolden() {
		require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), b.String(), "findings of the bad night (go test ./rules -run TestReplayBadNight -update rewrites %s)", golden)

	keys := map[string]finding.Finding{}
	for _, f := range got {
		assert.NotEmpty(t, f.Rule, f.Name())
		assert.NotEmpty(t, f.Evidence, "%s %s has evidence", f.Kind, f.Name())
		if f.Kind == finding.TaskFailed || f.Kind == finding.OOMKilled || f.Kind == finding.SIGKILL {
			assert.NotNil(t, f.Airflow, "%s %s carries its Airflow task", f.Kind, f.Name())
		}
		_, dup := keys[f.Key()]
		assert.False(t, dup, "%s %s reported twice", f.Kind, f.Name())
		keys[f.Key()] = f
	}
	webserverAdvisories := 0
	for _, f := range got {
		if f.Kind == finding.LimitRatio && strings.HasPrefix(f.Pod, "airflow-webserver-") {
			webserverAdvisories++
		}
	}
	assert.Equal(t, 1, webserverAdvisories, "the advisory is per owner: one for both webserver replicas")

	// A quarter of an hour later nothing that was found is found again under a new key.
	later := map[string]bool{}
	for _, f := range Replay(e, d, nightNow.Add(15*time.Minute)) {
		later[f.Key()] = true
	}
	for k, f := range keys {
		assert.True(t, later[k], "%s %s keeps its key", f.Kind, f.Name())
	}
}

// TestOneFailureOneFinding: a pod whose driver was OOM-killed and whose sidecar then died with
// exit 137 gives only the OOMKilled finding, not SIGKILL nor TaskFailed.
func TestOneFailureOneFinding(t *testing.T) {
	d := loadFixture(t, "testdata/pods/oomkilled.json")
	e := allRulesEngine(t)
	view := d.View()

	pod := fixturePod(t, d, "spark-jobs", "nightly-rollup-driver")
	require.NotEmpty(t, SIGKILLDetector{}.Detect(Input{Pod: pod, View: view, Now: nightNow}), "the sidecar alone is a SIGKILL")
	got := e.EvaluatePod(pod, view, nightNow)
	require.Len(t, got, 1, describeFindings(got))
	assert.Equal(t, finding.OOMKilled, got[0].Kind)
	assert.Equal(t, "spark-kubernetes-driver", got[0].Container)
	assert.Equal(t, "oomkilled", got[0].Rule)
	require.NotNil(t, got[0].Spark)
	assert.Equal(t, "nightly-rollup", got[0].Spark.AppName)

	worker := e.EvaluatePod(fixturePod(t, d, "airflow", "etl-daily-load-3nk8x0qz"), view, nightNow)
	require.Len(t, worker, 1, describeFindings(worker))
	assert.Equal(t, finding.OOMKilled, worker[0].Kind)
	assert.Equal(t, &finding.AirflowTask{DagID: "etl_daily", TaskID: "load",
		RunID: "scheduled__2026-11-19T00:00:00+00:00", TryNumber: 1}, worker[0].Airflow)
}

// TestSucceededPodsAreHealthy: no detector says anything about pods that succeeded.
func TestSucceededPodsAreHealthy(t *testing.T) {
	d := loadFixture(t, "testdata/pods/succeeded.json")
	require.Len(t, d.Pods, 3)
	reg := NewDefaultRegistry()
	view := d.View()
	for _, k := range reg.Kinds() {
		p, _ := reg.Lookup(k)
		det := p.New(nil)
		for _, pod := range d.Pods {
			for _, now := range []time.Time{nightNow, nightNow.Add(24 * time.Hour)} {
				got := det.Detect(Input{Pod: pod, View: view, Now: now})
				assert.Empty(t, got, "%s on %s: %s", k, pod.Name, describeFindings(got))
			}
		}
	}
}

// TestDetectorsTolerateBareInputs: detectors survive inputs without a view, without a pod, or
// with a pod that has nothing but a name, as a resync of a half-known object may give them.
func TestDetectorsTolerateBareInputs(t *testing.T) {
	reg := NewDefaultRegistry()
	for _, k := range reg.Kinds() {
		p, _ := reg.Lookup(k)
		det := p.New(nil)
		assert.Empty(t, det.Detect(Input{Now: nightNow}), k)
		bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bare"}}
		if k != finding.LimitRatio { // no containers, nothing to advise either
			assert.Empty(t, det.Detect(Input{Pod: bare, Now: nightNow}), k)
		}
		assert.Empty(t, det.Detect(Input{PVC: &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", CreationTimestamp: metav1.NewTime(nightNow)}}, Now: nightNow}), k)
	}
}
