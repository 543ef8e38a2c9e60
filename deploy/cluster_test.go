package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// The test apiserver (kube-apiserver + etcd from .cache/bin), started once for the package by
// the first test that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	env  *kubeenv.Env
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		_ = shared.env.Stop()
	}
	os.Exit(code)
}

// apiserver returns the package's test apiserver, skipping (or failing under
// PODMEDIC_REQUIRE_E2E=1) when its binaries are missing.
func apiserver(t *testing.T) *kubeenv.Env {
	t.Helper()
	dir := kubeenv.Require(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		shared.env, shared.err = kubeenv.Start(ctx, kubeenv.Options{BinDir: dir})
		if shared.err == nil {
			fmt.Fprintf(os.Stderr, "deploy: kube-apiserver ready in %s\n", time.Since(start).Round(time.Millisecond))
		}
	})
	require.NoError(t, shared.err, "start the test apiserver")
	return shared.env
}

// skippedKinds have no schema in the apiserver (CRDs the test apiserver does not have) and no
// API to dry-run against: the Prometheus Operator's ServiceMonitor. Its shape is checked by
// TestServiceMonitorShape instead.
var skippedKinds = map[string]bool{"monitoring.coreos.com/v1/ServiceMonitor": true}

func gvkKey(o *unstructured.Unstructured) string {
	return o.GetAPIVersion() + "/" + o.GetKind()
}

// TestKubeconform validates every rendered object — default, HA, everything on, and
// deploy/manifests — with kubeconform -strict against JSON schemas converted from the test
// apiserver's /openapi/v2 (no download: kubeconform's default registry is on the internet).
func TestKubeconform(t *testing.T) {
	kc := tool(t, "kubeconform")
	env := apiserver(t)
	dir := t.TempDir()
	schemas := filepath.Join(dir, "schemas")

	sets := map[string][]byte{}
	for _, r := range renderings {
		sets[r.name] = template(t, r.args...)
	}
	var manifests []byte
	files, err := filepath.Glob("manifests/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			manifests = append(append(manifests, mustRead(t, f)...), "\n---\n"...)
		}
	}
	sets["manifests"] = manifests

	gvks := map[schema.GroupVersionKind]bool{}
	for _, data := range sets {
		for _, o := range objects(t, data) {
			if !skippedKinds[gvkKey(o)] {
				gvks[o.GroupVersionKind()] = true
			}
		}
	}
	n := writeSchemas(t, env, schemas, gvks)
	t.Logf("%d JSON schemas from /openapi/v2 of kube-apiserver", n)

	location := schemas + "/{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json"
	validate := func(name string, data []byte) (string, error) {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		out, err := run(kc, "-strict", "-summary", "-schema-location", location,
			"-skip", "monitoring.coreos.com/v1/ServiceMonitor", path)
		return string(out), err
	}
	names := make([]string, 0, len(sets))
	for name := range sets {
		names = append(names, name)
	}
	sort.Strings(names)
	summary := regexp.MustCompile(`Valid: (\d+), Invalid: 0, Errors: 0, Skipped: (\d+)`)
	for _, name := range names {
		out, err := validate(name, sets[name])
		require.NoError(t, err, "kubeconform %s", name)
		m := summary.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		objs := objects(t, sets[name])
		skipped := 0
		for _, o := range objs {
			if skippedKinds[gvkKey(o)] {
				skipped++
			}
		}
		require.Equal(t, fmt.Sprint(len(objs)-skipped), m[1], "valid objects: %s", out)
		require.Equal(t, fmt.Sprint(skipped), m[2], "skipped objects: %s", out)
		t.Logf("kubeconform %s: %s", name, strings.TrimSpace(out))
	}

	// The schemas are strict: an unknown field, a wrong type, a missing required field fail.
	for _, c := range []struct{ name, doc, want string }{
		{"unknown-field", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replica":1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`, "replica"},
		{"wrong-type", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":"http"}]}}`, "port"},
		{"missing-required", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"x"},"subjects":[]}`, "roleRef"},
	} {
		out, err := validate(c.name, []byte(c.doc))
		require.Error(t, err, "kubeconform accepted %s: %s", c.name, out)
		require.Contains(t, out, c.want, c.name)
	}
}

// writeSchemas converts the apiserver's OpenAPI v2 definitions of gvks into standalone,
// strict JSON schemas (draft 4) at dir/<group>/<version>/<kind>.json, as kubeconform's
// openapi2jsonschema does: each file holds its definition and every definition it refers to,
// objects refuse properties they do not declare, and int-or-string and quantities accept
// numbers. It returns the number of schemas written.
func writeSchemas(t *testing.T, env *kubeenv.Env, dir string, gvks map[schema.GroupVersionKind]bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := env.Client.Discovery().RESTClient().Get().AbsPath("/openapi/v2").
		SetHeader("Accept", "application/json").DoRaw(ctx)
	require.NoError(t, err)
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Definitions)

	byGVK := map[schema.GroupVersionKind]string{}
	for name, def := range doc.Definitions {
		list, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			g, _ := m["group"].(string)
			v, _ := m["version"].(string)
			k, _ := m["kind"].(string)
			byGVK[schema.GroupVersionKind{Group: g, Version: v, Kind: k}] = name
		}
	}

	n := 0
	for gvk := range gvks {
		root, ok := byGVK[gvk]
		require.True(t, ok, "the apiserver has no OpenAPI definition of %s", gvk)
		defs := map[string]any{}
		var walk func(name string)
		walk = func(name string) {
			if _, done := defs[name]; done {
				return
			}
			def, ok := doc.Definitions[name]
			require.True(t, ok, "dangling $ref %s", name)
			defs[name] = nil
			converted := convertSchema(name, def, walk)
			defs[name] = converted
		}
		walk(root)
		top := map[string]any{}
		for k, v := range defs[root].(map[string]any) {
			top[k] = v
		}
		top["$schema"] = "http://json-schema.org/draft-04/schema#"
		top["definitions"] = defs

		apiVersion := gvk.GroupVersion().String()
		group, version := apiVersion, apiVersion
		if i := strings.Index(apiVersion, "/"); i >= 0 {
			group, version = apiVersion[:i], apiVersion[i+1:]
		}
		path := filepath.Join(dir, group, version, strings.ToLower(gvk.Kind)+".json")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		data, err := json.Marshal(top)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		n++
	}
	return n
}

// convertSchema turns one OpenAPI v2 definition into JSON schema, calling ref for every
// definition it refers to.
func convertSchema(name string, def map[string]any, ref func(string)) any {
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, val := range x {
				if k == "$ref" {
					if s, ok := val.(string); ok {
						ref(strings.TrimPrefix(s, "#/definitions/"))
					}
					out[k] = val
					continue
				}
				if k == "properties" {
					// Property names are not schema keywords: convert their schemas only.
					props := map[string]any{}
					for pk, pv := range val.(map[string]any) {
						props[pk] = conv(pv)
					}
					out[k] = props
					continue
				}
				out[k] = conv(val)
			}
			if f, _ := out["format"].(string); f == "int-or-string" {
				delete(out, "type")
				delete(out, "format")
				out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
			}
			if _, has := out["properties"]; has {
				if _, set := out["additionalProperties"]; !set {
					out["additionalProperties"] = false
				}
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = conv(e)
			}
			return out
		}
		return v
	}
	return conv(def)
}

// TestServerSideDryRunApply applies every rendered object — default, HA, everything on, and
// deploy/manifests — to the test apiserver with server-side apply, dryRun=All and strict field
// validation, in a namespace that enforces the restricted Pod Security Standard, and requires
// no error and no warning. A Pod made from the Deployment's template is then created (dry
// run), so that the Pod Security admission judges the pod itself.
func TestServerSideDryRunApply(t *testing.T) {
	env := apiserver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var warnings warningRecorder
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = &warnings
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))

	// The namespace, for real (deploy/manifests/namespace.yaml: restricted Pod Security).
	ns := objects(t, mustRead(t, "manifests/namespace.yaml"))
	require.Len(t, ns, 1)
	apply(ctx, t, dyn, mapper, ns[0], false)
	got, err := env.Client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "restricted", got.Labels["pod-security.kubernetes.io/enforce"])

	for _, w := range watchedNamespaces {
		_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	sets := map[string][]*unstructured.Unstructured{"manifests": manifestObjects(t)}
	for _, r := range renderings {
		sets[r.name] = objects(t, template(t, r.args...))
	}
	for name, objs := range sets {
		applied := 0
		for _, o := range objs {
			if skippedKinds[gvkKey(o)] {
				t.Logf("%s: %s %s skipped (no such API in the test apiserver)", name, o.GetKind(), o.GetName())
				continue
			}
			warnings.reset()
			apply(ctx, t, dyn, mapper, o, true)
			require.Empty(t, warnings.list(), "%s: warnings applying %s %s", name, o.GetKind(), o.GetName())
			applied++
		}

		// The pod itself, as the ReplicaSet controller would create it.
		d := deployment(t, objs)
		pod := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-dry-run", Namespace: namespace, Labels: d.Spec.Template.Labels,
				Annotations: d.Spec.Template.Annotations},
			Spec: d.Spec.Template.Spec,
		}
		warnings.reset()
		u, err := toUnstructured(pod)
		require.NoError(t, err)
		_, err = dyn.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(namespace).
			Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		require.NoError(t, err, "%s: the pod is refused", name)
		require.Empty(t, warnings.list(), "%s: warnings creating the pod", name)
		t.Logf("%s: %d objects and the pod accepted by server-side dry-run apply (restricted Pod Security)", name, applied)
	}

	// The check bites: a container that keeps its capabilities is refused in this namespace.
	d := deployment(t, sets["default"])
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "capable", Namespace: namespace}, Spec: *d.Spec.Template.Spec.DeepCopy()}
	bad.Spec.Containers[0].SecurityContext.Capabilities = nil
	_, err = env.Client.CoreV1().Pods(namespace).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "violates PodSecurity")
}

// apply server-side applies o (dry run unless real), with strict field validation.
func apply(ctx context.Context, t *testing.T, dyn dynamic.Interface, mapper meta.RESTMapper, o *unstructured.Unstructured, dryRun bool) {
	t.Helper()
	gvk := o.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	require.NoError(t, err, "%s", gvk)
	var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		require.NotEmpty(t, o.GetNamespace(), "%s %s has no namespace", o.GetKind(), o.GetName())
		ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	data, err := json.Marshal(o.Object)
	require.NoError(t, err)
	opts := metav1.PatchOptions{FieldManager: "podmedic-deploy-test", Force: ptr(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	if apierrors.IsAlreadyExists(err) && !dryRun {
		err = nil
	}
	require.NoError(t, err, "apply %s %s", o.GetKind(), o.GetName())
}

func toUnstructured(v any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return u, nil
}

func ptr[T any](v T) *T { return &v }

// warningRecorder collects the API's warnings (deprecations, Pod Security, unknown fields).
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningRecorder) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = nil
}

func (w *warningRecorder) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// TestServiceMonitorShape checks the ServiceMonitor, which neither kubeconform nor the test
// apiserver know (a CRD): monitoring.coreos.com/v1, selecting the Service's labels in the
// release namespace, scraping its http port on /metrics.
func TestServiceMonitorShape(t *testing.T) {
	objs := objects(t, template(t, "--set", "serviceMonitor.enabled=true"))
	sms := byKind(objs, "ServiceMonitor")
	require.Len(t, sms, 1)
	sm := sms[0]
	require.Equal(t, "monitoring.coreos.com/v1", sm.GetAPIVersion())
	svc := typed[corev1.Service](t, byKind(objs, "Service")[0])
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		require.Equal(t, v, svc.Labels[k], "ServiceMonitor selects label %s=%s the Service does not have", k, v)
	}
	nsNames, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	require.Equal(t, []string{namespace}, nsNames)
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	require.Len(t, eps, 1)
	ep := eps[0].(map[string]any)
	require.Equal(t, svc.Spec.Ports[0].Name, ep["port"])
	require.Equal(t, "/metrics", ep["path"])
	allowed := map[string]bool{"port": true, "path": true, "interval": true, "scrapeTimeout": true}
	for k := range ep {
		require.True(t, allowed[k], "unexpected endpoint field %s", k)
	}
	spec, _, _ := unstructured.NestedMap(sm.Object, "spec")
	for k := range spec {
		require.Contains(t, []string{"selector", "namespaceSelector", "endpoints"}, k)
	}
}

// TestPodmedicRunsWithChartRBAC runs the real podmedic binary as the chart's ServiceAccount
// (impersonated, with exactly the rendered RBAC): it becomes ready (its informers may list and
// watch), deletes a pod stuck in Init:0/1 under an auto rule and records the Event; once the
// actions binding is gone, the same action fails with Forbidden. The RBAC is enough, and the
// actions values really are what permits acting. With watchNamespaces the same holds through
// RoleBindings in the watched namespace, and the ServiceAccount may do nothing elsewhere.
func TestPodmedicRunsWithChartRBAC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs podmedic")
	}
	t.Run("cluster", func(t *testing.T) { runWithChartRBAC(t, false) })
	t.Run("watchNamespaces", func(t *testing.T) { runWithChartRBAC(t, true) })
}

func runWithChartRBAC(t *testing.T, namespaced bool) {
	env := apiserver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	ns := objects(t, mustRead(t, "manifests/namespace.yaml"))
	apply(ctx, t, dyn, mapper, ns[0], false)
	target := "rbac-check-" + rand.String(5)
	_, err = env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: target}}, metav1.CreateOptions{})
	require.NoError(t, err)
	var args, runArgs []string
	if namespaced {
		args = []string{"--set", "watchNamespaces={" + target + "}"}
		runArgs = []string{"--namespace", target} // as the chart's Deployment passes it
	}
	for _, o := range objects(t, template(t, args...)) {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			apply(ctx, t, dyn, mapper, o, false)
		}
	}
	t.Cleanup(func() {
		for _, name := range []string{release, release + "-actions", release + "-webhook"} {
			_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
			_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	sa := "system:serviceaccount:" + namespace + ":" + release
	if namespaced {
		elsewhere := "rbac-elsewhere-" + rand.String(5)
		for _, c := range []struct {
			ns, verb, resource string
			allowed            bool
		}{
			{target, "delete", "pods", true}, {target, "list", "pods", true}, {target, "get", "pods/log", true},
			{elsewhere, "delete", "pods", false}, {elsewhere, "get", "pods/log", false}, {"", "list", "pods", false},
		} {
			sub := ""
			res := c.resource
			if r, s, ok := strings.Cut(res, "/"); ok {
				res, sub = r, s
			}
			sar, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: sa, ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: c.ns, Verb: c.verb, Resource: res, Subresource: sub}}}, metav1.CreateOptions{})
			require.NoError(t, err)
			require.Equal(t, c.allowed, sar.Status.Allowed, "%s %s in %q", c.verb, c.resource, c.ns)
		}
	}

	// A kubeconfig that acts as the ServiceAccount.
	dir := t.TempDir()
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	require.NoError(t, err)
	for _, ai := range kc.AuthInfos {
		ai.Impersonate = sa
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, kubeconfig))

	rules := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(`version: 1
cluster: rbac-check
namespaces: {include: [`+target+`]}
cooldown: 0s
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: auto, params: {grace_period: 1}}
`), 0o600))

	bin := filepath.Join(dir, "podmedic")
	_, err = run("go", "build", "-o", bin, "../cmd/podmedic")
	require.NoError(t, err)
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"run", "--kubeconfig", kubeconfig, "--config", rules, "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", addr, "--inbox-addr", "", "--resync", "1s", "--console-format", "json"}, runArgs...)...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+namespace, "SLACK_BOT_TOKEN=", "SLACK_BOT_TOKEN_FILE=")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("podmedic output:\n%s", logs.String())
		}
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/readyz"); return code == http.StatusOK }, 60*time.Second, 100*time.Millisecond,
		"podmedic is not ready with the chart's RBAC")
	metric := func(name string) string {
		_, body := get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}

	stuck := func(name string) {
		p := &corev1.Pod{
			// A Spark driver: the guard's owner policy lets podmedic delete it (the operator
			// recreates it).
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: target, Labels: map[string]string{"spark-role": "driver", "spark-app-selector": "spark-" + name}},
			Spec: corev1.PodSpec{NodeName: "node-1", RestartPolicy: corev1.RestartPolicyNever,
				InitContainers: []corev1.Container{{Name: "wait-for-history", Image: "busybox"}},
				Containers:     []corev1.Container{{Name: "driver", Image: "spark"}}},
		}
		p, err := env.Client.CoreV1().Pods(target).Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
		started := metav1.NewTime(time.Now().Add(-40 * time.Minute))
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, Reason: "ContainersNotInitialized"}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "wait-for-history", Image: "busybox",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "driver", Image: "spark",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}}
		_, err = env.Client.CoreV1().Pods(target).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}

	// With the actions ClusterRole: deleted, and the Event written.
	stuck("spark-driver-a")
	require.Eventually(t, func() bool {
		p, err := env.Client.CoreV1().Pods(target).Get(ctx, "spark-driver-a", metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
	}, 60*time.Second, 200*time.Millisecond, "the stuck pod was not deleted")
	require.Equal(t, "1", metric(`podmedic_actions_total{outcome="executed",type="delete-pod"}`))
	require.Eventually(t, func() bool {
		evs, err := env.Client.EventsV1().Events(target).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, e := range evs.Items {
			if e.ReportingController == "podmedic" && e.Regarding.Name == "spark-driver-a" && e.Reason == "PodmedicExecuted" {
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "no PodmedicExecuted Event (events.k8s.io create)")

	// Without it (as with actions.deletePods=false): the delete is forbidden.
	if namespaced {
		require.NoError(t, env.Client.RbacV1().RoleBindings(target).Delete(ctx, release+"-actions", metav1.DeleteOptions{}))
	} else {
		require.NoError(t, env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, release+"-actions", metav1.DeleteOptions{}))
	}
	stuck("spark-driver-b")
	require.Eventually(t, func() bool {
		return metric(`podmedic_actions_total{outcome="failed",type="delete-pod"}`) != ""
	}, 60*time.Second, 200*time.Millisecond, "the delete without RBAC did not fail")
	_, err = env.Client.CoreV1().Pods(target).Get(ctx, "spark-driver-b", metav1.GetOptions{})
	require.NoError(t, err, "the pod is still there")
	require.Contains(t, logs.String(), "forbidden")
	require.NotContains(t, strings.ReplaceAll(logs.String(), `pods \"spark-driver-b\" is forbidden`, ""), "is forbidden: User",
		"a permission other than the removed delete is missing")
	t.Logf("as %s (namespaced %v): ready, deleted a stuck pod and recorded its Event; without the actions binding the delete was forbidden", sa, namespaced)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is an io.Writer safe for a process's stdout and stderr at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
