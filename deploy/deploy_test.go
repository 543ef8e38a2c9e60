package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

const (
	chartDir  = "helm/podmedic"
	release   = "podmedic"
	namespace = "podmedic"
)

// tool returns the path of a binary hack/testbins.sh builds into .cache/bin (helm,
// kubeconform). When it is missing the test is skipped, or fails under PODMEDIC_REQUIRE_E2E=1.
func tool(t testing.TB, name string) string {
	t.Helper()
	dir, err := kubeenv.BinDir()
	if err == nil {
		path := filepath.Join(dir, name)
		var fi os.FileInfo
		if fi, err = os.Stat(path); err == nil && fi.Mode()&0o111 != 0 {
			return path
		}
		if err == nil {
			err = fmt.Errorf("%s is not executable", path)
		}
	}
	msg := fmt.Sprintf("%s missing (run `make testbins` or hack/testbins.sh %s): %v", name, name, err)
	if os.Getenv(kubeenv.EnvRequireE2E) == "1" {
		t.Fatalf("%s; %s=1 makes this an error", msg, kubeenv.EnvRequireE2E)
	}
	t.Skipf("%s; set %s=1 to fail instead of skip", msg, kubeenv.EnvRequireE2E)
	return ""
}

// run runs a command and returns its stdout; stderr is in the error.
func run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

// rendering is one set of chart values the tests render and check.
type rendering struct {
	name string
	args []string // extra helm template arguments
}

// renderings are the value sets every check covers: the defaults (what deploy/manifests is),
// HA (ci/ha-values.yaml), everything on (ci/all-values.yaml: the widest RBAC), and every
// action off (the narrowest).
var renderings = []rendering{
	{"default", nil},
	{"ha", []string{"-f", chartDir + "/ci/ha-values.yaml"}},
	{"all", []string{"-f", chartDir + "/ci/all-values.yaml"}},
	{"no-actions", []string{"--set", "actions.deletePods=false,actions.evictPods=false,actions.patchWorkloads=false,actions.airflowClear=false,rbac.podLogs=false,leaderElection.enabled=false"}},
	// RoleBindings in these namespaces (TestServerSideDryRunApply creates them).
	{"namespaced", []string{"--set", "watchNamespaces={airflow,spark-jobs}"}},
}

// watchedNamespaces are the namespaces of the "namespaced" rendering.
var watchedNamespaces = []string{"airflow", "spark-jobs"}

// template renders the chart as release podmedic in namespace podmedic.
func template(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := run(tool(t, "helm"), append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
	require.NoError(t, err)
	return out
}

// objects splits a YAML stream into objects (empty documents dropped).
func objects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// byKind returns the objects of one kind.
func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// typed converts an object to its Go type.
func typed[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	v := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true),
		"%s %s", o.GetKind(), o.GetName())
	return v
}

func deployment(t testing.TB, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	ds := byKind(objs, "Deployment")
	require.Len(t, ds, 1)
	return typed[appsv1.Deployment](t, ds[0])
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// TestChartRulesMatchRepository: the chart ships the repository's default rules.yaml
// (files/rules.yaml is a copy, refreshed by deploy/render.sh).
func TestChartRulesMatchRepository(t *testing.T) {
	want, err := os.ReadFile("../rules.yaml")
	require.NoError(t, err)
	got, err := os.ReadFile(chartDir + "/files/rules.yaml")
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got),
		"deploy/helm/podmedic/files/rules.yaml differs from rules.yaml: run deploy/render.sh")
}

// TestHelmLint: helm lint --strict is clean with the default values and each ci/ values file.
func TestHelmLint(t *testing.T) {
	helm := tool(t, "helm")
	for _, args := range [][]string{nil, {"-f", chartDir + "/ci/ha-values.yaml"}, {"-f", chartDir + "/ci/all-values.yaml"}} {
		out, err := run(helm, append([]string{"lint", "--strict", chartDir}, args...)...)
		require.NoError(t, err)
		require.Contains(t, string(out), "1 chart(s) linted, 0 chart(s) failed")
		for _, bad := range []string{"[WARNING]", "[ERROR]"} {
			require.NotContains(t, string(out), bad, "helm lint %v", args)
		}
		t.Logf("helm lint %v: ok", args)
	}
}

// TestHelmTemplate renders the chart with each value set and checks what a platform team
// relies on: the objects, the hardened pod, Guaranteed QoS, probes, the NATS mode.
func TestHelmTemplate(t *testing.T) {
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			objs := objects(t, template(t, r.args...))
			t.Logf("%s: %s", r.name, strings.Join(kinds(objs), ", "))
			d := deployment(t, objs)
			pod := d.Spec.Template.Spec
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]

			// Hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp.
			psc := pod.SecurityContext
			require.NotNil(t, psc)
			require.True(t, *psc.RunAsNonRoot)
			require.EqualValues(t, 65532, *psc.RunAsUser)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
			sc := c.SecurityContext
			require.NotNil(t, sc)
			require.True(t, *sc.ReadOnlyRootFilesystem)
			require.False(t, *sc.AllowPrivilegeEscalation)
			require.True(t, *sc.RunAsNonRoot)
			require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
			require.Empty(t, sc.Capabilities.Add)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
			require.False(t, pod.HostNetwork || pod.HostPID || pod.HostIPC)

			// Requests equal limits (Guaranteed QoS) for cpu and memory.
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				lim, req := c.Resources.Limits[res], c.Resources.Requests[res]
				require.False(t, lim.IsZero(), "no %s limit", res)
				require.Zero(t, lim.Cmp(req), "%s request %s != limit %s", res, req.String(), lim.String())
			}

			// Probes on /healthz and /readyz on the metrics port, which the Service exposes.
			require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "/healthz", c.StartupProbe.HTTPGet.Path)
			require.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "webhook", ContainerPort: 8443, Protocol: corev1.ProtocolTCP}}, c.Ports)
			svcs := byKind(objs, "Service")
			require.Len(t, svcs, 1)
			svc := typed[corev1.Service](t, svcs[0])
			require.Equal(t, "http", svc.Spec.Ports[0].TargetPort.StrVal)
			require.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector)

			// The admission webhook: the Service's 443 to the pod's webhook port; the
			// configuration fails open, waits at most 2 s, sees only new KubernetesExecutor
			// workers outside the protected namespaces, and leaves its caBundle to podmedic.
			require.Equal(t, "webhook", svc.Spec.Ports[1].TargetPort.StrVal)
			require.EqualValues(t, 443, svc.Spec.Ports[1].Port)
			require.Contains(t, c.Args, "--webhook-addr=:8443")
			require.Contains(t, c.Args, "--webhook-secret="+release+"-webhook-tls")
			whs := byKind(objs, "MutatingWebhookConfiguration")
			require.Len(t, whs, 1)
			wh := typed[admissionregistrationv1.MutatingWebhookConfiguration](t, whs[0]).Webhooks[0]
			require.Equal(t, admissionregistrationv1.Ignore, *wh.FailurePolicy)
			require.EqualValues(t, 2, *wh.TimeoutSeconds)
			require.Equal(t, admissionregistrationv1.SideEffectClassNone, *wh.SideEffects)
			require.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, wh.Rules[0].Operations)
			require.Equal(t, []string{"pods"}, wh.Rules[0].Resources)
			require.Equal(t, map[string]string{"kubernetes_executor": "True"}, wh.ObjectSelector.MatchLabels)
			require.Subset(t, wh.NamespaceSelector.MatchExpressions[0].Values, []string{namespace, "kube-system"})
			require.Empty(t, wh.ClientConfig.CABundle, "podmedic fills the caBundle")
			require.Equal(t, "/mutate/pods", *wh.ClientConfig.Service.Path)

			// POD_NAMESPACE from the downward API: actions never touch podmedic's own namespace.
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			require.Equal(t, "metadata.namespace", env["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath)
			// Secrets only as files (or a secretKeyRef for the NATS URL), never as values.
			for _, e := range c.Env {
				require.NotContains(t, []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
					"AIRFLOW_PASSWORD", "AIRFLOW_TOKEN", "AIRFLOW_USERNAME"}, e.Name, "a secret as a plain variable")
			}
			// One Secret, created empty: podmedic fills it with the webhook's own CA and
			// certificate. The chart never carries a credential.
			secrets := byKind(objs, "Secret")
			require.Len(t, secrets, 1, "the chart creates no Secret but the webhook's empty one")
			sec := typed[corev1.Secret](t, secrets[0])
			require.Equal(t, release+"-webhook-tls", sec.Name)
			require.Empty(t, sec.Data)
			require.Empty(t, sec.StringData)

			args := strings.Join(c.Args, " ")
			require.True(t, strings.HasPrefix(args, "run --config=/etc/podmedic/rules/rules.yaml --http-addr=:8080"), args)
			require.NotNil(t, pod.ServiceAccountName)
			require.Len(t, byKind(objs, "PodDisruptionBudget"), 1)

			switch r.name {
			case "default", "no-actions":
				require.EqualValues(t, 1, *d.Spec.Replicas)
				require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
				require.Contains(t, c.Args, "--data-dir=/var/lib/podmedic/nats")
				require.NotContains(t, args, "--nats-url")
				require.Len(t, byKind(objs, "PersistentVolumeClaim"), 1)
				require.Empty(t, byKind(objs, "ServiceMonitor"), "ServiceMonitor is off by default")
				require.Empty(t, byKind(objs, "NetworkPolicy"), "NetworkPolicy is off by default")
			case "ha":
				require.EqualValues(t, 3, *d.Spec.Replicas)
				require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
				require.Contains(t, args, "--nats-url=nats://nats-0.nats.nats.svc:4222,")
				require.Contains(t, c.Args, "--nats-replicas=3")
				require.NotContains(t, args, "--data-dir")
				require.Empty(t, byKind(objs, "PersistentVolumeClaim"))
				require.NotNil(t, pod.Affinity, "HA replicas spread over nodes")
				require.Equal(t, "/etc/podmedic/slack/bot-token", env["SLACK_BOT_TOKEN_FILE"].Value)
				require.Equal(t, "/etc/podmedic/slack/app-token", env["SLACK_APP_TOKEN_FILE"].Value)
				require.Equal(t, "/etc/podmedic/airflow/password", env["AIRFLOW_PASSWORD_FILE"].Value)
			case "all":
				require.Contains(t, c.Args, "--nats-url=$(NATS_URL)")
				require.Equal(t, "podmedic-nats", env["NATS_URL"].ValueFrom.SecretKeyRef.Name)
				require.Contains(t, c.Args, "--dry-run")
				require.Len(t, byKind(objs, "ServiceMonitor"), 1)
				require.Len(t, byKind(objs, "NetworkPolicy"), 1)
				require.Equal(t, "/etc/podmedic/airflow/token", env["AIRFLOW_TOKEN_FILE"].Value)
				require.NotContains(t, env, "AIRFLOW_PASSWORD_FILE")
			}
		})
	}
}

// TestHelmTemplateRefusesBadValues: values that cannot work fail the render with a message
// that says what to do.
func TestHelmTemplateRefusesBadValues(t *testing.T) {
	helm := tool(t, "helm")
	for _, c := range []struct {
		set, want string
	}{
		{"replicas=3", "replicas: 3 needs an external NATS (nats.url or nats.existingSecret)"},
		{"resources.requests.memory=128Mi", "resources.requests.memory (128Mi) must equal resources.limits.memory (256Mi)"},
		{"consoleFormat=yaml", `consoleFormat must be text or json, not "yaml"`},
	} {
		_, err := run(helm, "template", release, chartDir, "--set", c.set)
		require.ErrorContains(t, err, c.want, c.set)
	}
	// The chart's kubeVersion: the APIs it uses (policy/v1, events.k8s.io/v1, seccompProfile).
	_, err := run(helm, "template", release, chartDir, "--kube-version", "1.27.0")
	require.NoError(t, err)
	_, err = run(helm, "template", release, chartDir, "--kube-version", "1.26.9")
	require.ErrorContains(t, err, "chart requires kubeVersion")
}

// TestNotesWarnAboutUnpermittedRules: NOTES.txt lists the rules whose action the
// installation's actions values do not permit.
func TestNotesWarnAboutUnpermittedRules(t *testing.T) {
	helm := tool(t, "helm")
	out, err := run(helm, "install", release, chartDir, "--namespace", namespace, "--dry-run=client",
		"--set", "actions.deletePods=false")
	require.NoError(t, err)
	require.Contains(t, string(out), "WARNING: these rules and schedules take actions this installation does not permit")
	require.Contains(t, string(out), "init-stuck (delete-pod), stuck-terminating (delete-pod), schedule sweep-evicted (delete-pod)")
	out, err = run(helm, "install", release, chartDir, "--namespace", namespace, "--dry-run=client")
	require.NoError(t, err)
	require.NotContains(t, string(out), "WARNING", "the default values permit every action of the default rules")
}

// TestRenderedManifestsAreUpToDate: deploy/manifests is exactly what deploy/render.sh makes
// from the chart now, and its kustomization.yaml lists every file.
func TestRenderedManifestsAreUpToDate(t *testing.T) {
	helm := tool(t, "helm")
	dir := t.TempDir()
	cmd := exec.Command("./render.sh", dir)
	cmd.Env = append(os.Environ(), "HELM="+helm)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	want, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	have, err := filepath.Glob("manifests/*")
	require.NoError(t, err)
	var wantNames, haveNames []string
	for _, f := range want {
		wantNames = append(wantNames, filepath.Base(f))
	}
	for _, f := range have {
		haveNames = append(haveNames, filepath.Base(f))
	}
	require.Equal(t, wantNames, haveNames, "deploy/manifests is stale: run deploy/render.sh")
	for _, name := range wantNames {
		w, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		h, err := os.ReadFile(filepath.Join("manifests", name))
		require.NoError(t, err)
		require.Equal(t, string(w), string(h), "deploy/manifests/%s is stale: run deploy/render.sh", name)
	}

	kust := objects(t, mustRead(t, "manifests/kustomization.yaml"))
	require.Len(t, kust, 1)
	res, _, _ := unstructured.NestedStringSlice(kust[0].Object, "resources")
	var files []string
	for _, n := range haveNames {
		if n != "kustomization.yaml" {
			files = append(files, n)
		}
	}
	sort.Strings(res)
	require.Equal(t, files, res, "kustomization.yaml resources")
	t.Logf("deploy/manifests: %d files, up to date", len(haveNames))
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// manifestObjects are the objects of deploy/manifests (kustomization.yaml excluded).
func manifestObjects(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob("manifests/*.yaml")
	require.NoError(t, err)
	var all []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		all = append(all, objects(t, mustRead(t, f))...)
	}
	return all
}

// rbacRules are the permissions of the rendered (Cluster)Roles, as "group/resource verb"
// strings, after requiring that rbacProblems finds nothing.
func rbacRules(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	perms, problems := rbacCheck(t, objs)
	require.Empty(t, problems)
	return perms
}

// rbacCheck returns the permissions the rendered (Cluster)Roles grant, as sorted
// "group/resource verb" strings, and the problems it found: wildcards, Secrets, RBAC objects
// and other resources podmedic never needs, dangerous verbs, aggregation, bindings of roles
// the chart does not define or to subjects other than its ServiceAccount.
func rbacCheck(t testing.TB, objs []*unstructured.Unstructured) (perms, problems []string) {
	t.Helper()
	set := map[string]bool{}
	roles := map[string]bool{}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, o := range objs {
		var rules []rbacv1.PolicyRule
		switch o.GetKind() {
		case "ClusterRole":
			cr := typed[rbacv1.ClusterRole](t, o)
			rules = cr.Rules
			if cr.AggregationRule != nil {
				bad("ClusterRole %s aggregates other roles", o.GetName())
			}
		case "Role":
			rules = typed[rbacv1.Role](t, o).Rules
		default:
			continue
		}
		roles[o.GetKind()+"/"+o.GetName()] = true
		for _, r := range rules {
			where := fmt.Sprintf("%s %s: %+v", o.GetKind(), o.GetName(), r)
			if len(r.NonResourceURLs) > 0 {
				bad("non-resource URLs in %s", where)
			}
			if len(r.Verbs) == 0 || len(r.Resources) == 0 {
				bad("a rule without verbs or resources in %s", where)
			}
			for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.ResourceNames} {
				for _, v := range list {
					if strings.Contains(v, "*") {
						bad("wildcard %q in %s", v, where)
					}
				}
			}
			for _, res := range r.Resources {
				base, _, _ := strings.Cut(res, "/")
				// The webhook's TLS Secret and its own MutatingWebhookConfiguration, by name
				// only, get and update only; any other access to them is refused.
				if named, ok := byNameOnly[base]; ok && (!slices.Equal(r.ResourceNames, []string{named}) ||
					slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "update" })) {
					bad("%s access beyond get/update of %s in %s", base, named, where)
				}
				if slices.Contains([]string{"roles", "clusterroles", "rolebindings", "clusterrolebindings",
					"serviceaccounts", "configmaps", "nodes", "namespaces"}, base) {
					bad("podmedic does not need %s: %s", res, where)
				}
			}
			for _, v := range r.Verbs {
				if slices.Contains([]string{"escalate", "bind", "impersonate", "deletecollection"}, v) {
					bad("verb %s in %s", v, where)
				}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						set[g+"/"+res+" "+v] = true
					}
				}
			}
		}
	}
	// Bindings grant the chart's roles to the chart's ServiceAccount and nobody else.
	for _, o := range objs {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		switch o.GetKind() {
		case "ClusterRoleBinding":
			b := typed[rbacv1.ClusterRoleBinding](t, o)
			ref, subjects = b.RoleRef, b.Subjects
		case "RoleBinding":
			b := typed[rbacv1.RoleBinding](t, o)
			ref, subjects = b.RoleRef, b.Subjects
		default:
			continue
		}
		if !roles[ref.Kind+"/"+ref.Name] {
			bad("%s %s binds %s %s, which the chart does not define", o.GetKind(), o.GetName(), ref.Kind, ref.Name)
		}
		if want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: release, Namespace: namespace}}; !slices.Equal(subjects, want) {
			bad("%s %s binds %+v, not only the chart's ServiceAccount", o.GetKind(), o.GetName(), subjects)
		}
	}
	for k := range set {
		perms = append(perms, k)
	}
	sort.Strings(perms)
	return perms, problems
}

// byNameOnly are the resources podmedic may reach by one name only: the webhook's TLS Secret
// and its MutatingWebhookConfiguration.
var byNameOnly = map[string]string{"secrets": release + "-webhook-tls", "mutatingwebhookconfigurations": release}

// TestRBACCheckCatches: the check itself finds wildcards, Secrets and foreign bindings.
func TestRBACCheckCatches(t *testing.T) {
	objs := objects(t, []byte(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: podmedic}
rules:
  - {apiGroups: [""], resources: [pods], verbs: ["*"]}
  - {apiGroups: ["*"], resources: [deployments], verbs: [get]}
  - {apiGroups: [""], resources: [secrets], verbs: [get]}
  - {apiGroups: [apps], resources: ["*"], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: podmedic-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: podmedic, namespace: podmedic}]
`))
	_, problems := rbacCheck(t, objs)
	joined := strings.Join(problems, "\n")
	require.Len(t, problems, 5, joined)
	for _, want := range []string{`wildcard "*" in ClusterRole podmedic`, "secrets access beyond get/update of podmedic-webhook-tls", "binds ClusterRole cluster-admin"} {
		require.Contains(t, joined, want)
	}
}

// TestRBACLeastPrivilege parses every rendered (Cluster)Role — default, HA, everything on,
// every action off, and deploy/manifests — and fails on a wildcard, on any access to Secrets
// or RBAC, and on any permission beyond what podmedic's code uses, which the actions values
// gate one by one.
func TestRBACLeastPrivilege(t *testing.T) {
	always := []string{
		"/events get", "/events list", "/events watch",
		"/persistentvolumeclaims get", "/persistentvolumeclaims list", "/persistentvolumeclaims watch",
		"/pods get", "/pods list", "/pods watch",
		"events.k8s.io/events create", "events.k8s.io/events patch",
		"sparkoperator.k8s.io/sparkapplications get", "sparkoperator.k8s.io/sparkapplications list", "sparkoperator.k8s.io/sparkapplications watch",
		"sparkoperator.k8s.io/scheduledsparkapplications get", "sparkoperator.k8s.io/scheduledsparkapplications list", "sparkoperator.k8s.io/scheduledsparkapplications watch",
	}
	// The webhook's TLS (on by default): its Secret and configuration, by name.
	webhook := []string{"/secrets get", "/secrets update",
		"admissionregistration.k8s.io/mutatingwebhookconfigurations get", "admissionregistration.k8s.io/mutatingwebhookconfigurations update",
		"/limitranges get", "/limitranges list", "/limitranges watch", "/resourcequotas get", "/resourcequotas list", "/resourcequotas watch"}
	leases := []string{"coordination.k8s.io/leases get", "coordination.k8s.io/leases create", "coordination.k8s.io/leases update"}
	with := func(parts ...[]string) []string {
		out := slices.Clone(always)
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	want := map[string][]string{
		"default":    with([]string{"/pods delete", "/pods/log get"}, leases, webhook),
		"namespaced": with([]string{"/pods delete", "/pods/log get"}, leases, webhook),
		"ha":         with([]string{"/pods delete", "/pods/log get"}, leases, webhook),
		"no-actions": with(webhook),
		"all": with([]string{"/pods delete", "/pods/log get", "/pods/eviction create",
			"apps/deployments get", "apps/deployments patch", "apps/statefulsets get", "apps/statefulsets patch",
			"apps/daemonsets get", "apps/daemonsets patch", "apps/replicasets get", "apps/replicasets patch",
			"batch/cronjobs get", "batch/cronjobs patch", "batch/jobs get"}, leases, webhook),
	}
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			objs := objects(t, template(t, r.args...))
			got := rbacRules(t, objs)
			w := slices.Clone(want[r.name])
			sort.Strings(w)
			require.Equal(t, w, got)
			if r.name == "namespaced" {
				// No grant reaches beyond the watched namespaces (the leader election Role
				// stays in podmedic's own), and the Deployment watches exactly them.
				var where []string
				for _, o := range objs {
					switch o.GetKind() {
					case "ClusterRoleBinding":
						// Only the webhook's: its configuration is cluster-scoped (one, by name).
						if o.GetName() != release+"-webhook" {
							t.Errorf("ClusterRoleBinding %s with watchNamespaces set", o.GetName())
						}
					case "RoleBinding":
						where = append(where, o.GetName()+"@"+o.GetNamespace())
					}
				}
				assert.ElementsMatch(t, []string{"podmedic@airflow", "podmedic@spark-jobs", "podmedic-actions@airflow",
					"podmedic-actions@spark-jobs", "podmedic-leader-election@podmedic", "podmedic-webhook-tls@podmedic"}, where)
				args := deployment(t, objs).Spec.Template.Spec.Containers[0].Args
				assert.Subset(t, args, []string{"--namespace=airflow", "--namespace=spark-jobs"})
			}
			t.Logf("%s: %d permissions: %s", r.name, len(got), strings.Join(got, ", "))
		})
	}
	t.Run("manifests", func(t *testing.T) {
		got := rbacRules(t, manifestObjects(t))
		w := slices.Clone(want["default"])
		sort.Strings(w)
		require.Equal(t, w, got)
	})
	t.Run("gates", func(t *testing.T) {
		// Each actions value adds exactly its own permissions.
		for _, c := range []struct{ set, adds string }{
			{"actions.deletePods=true", "/pods delete"},
			{"actions.evictPods=true", "/pods/eviction create"},
			{"actions.patchWorkloads=true", "apps/deployments get, apps/deployments patch, apps/replicasets get, apps/replicasets patch, apps/statefulsets get, apps/statefulsets patch, apps/daemonsets get, apps/daemonsets patch, batch/cronjobs get, batch/cronjobs patch, batch/jobs get"},
			{"leaderElection.enabled=true", "coordination.k8s.io/leases create, coordination.k8s.io/leases get, coordination.k8s.io/leases update"},
			{"actions.airflowClear=true", ""},
			{"actions.patchSparkApplications=true", "sparkoperator.k8s.io/sparkapplications patch, sparkoperator.k8s.io/scheduledsparkapplications patch"},
			{"webhook.enabled=true", strings.Join(webhook, ", ")},
		} {
			base := "actions.deletePods=false,actions.evictPods=false,actions.patchWorkloads=false,actions.patchSparkApplications=false,actions.airflowClear=false,leaderElection.enabled=false,webhook.enabled=false"
			got := rbacRules(t, objects(t, template(t, "--set", base+","+c.set)))
			w := slices.Clone(always)
			w = append(w, "/pods/log get")
			if c.adds != "" {
				w = append(w, strings.Split(c.adds, ", ")...)
			}
			sort.Strings(w)
			require.Equal(t, w, got, c.set)
		}
		// The permission to patch SparkApplications and the flag that uses it come together.
		for _, on := range []bool{false, true} {
			out := template(t, "--set", fmt.Sprintf("actions.patchSparkApplications=%t", on))
			require.Equal(t, on, strings.Contains(string(out), "- --patch-spark-applications"), "actions.patchSparkApplications=%t", on)
		}
	})
}
