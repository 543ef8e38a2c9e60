package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	jsonpatchapply "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/overrides"
)

var now = time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)

func cache(ovs ...overrides.Override) *overrides.Cache {
	c := overrides.NewCache()
	for _, o := range ovs {
		c.Set(o)
	}
	return c
}

func override(container, limit, request string) overrides.Override {
	tk := overrides.Task{Cluster: "prod-eu", Namespace: "airflow", DagID: "etl_daily", TaskID: "load", Container: container}
	return overrides.Override{ID: tk.ID(), Task: tk, Limit: limit, Request: request, MaxLimit: "16Gi", ProposalID: "p-1",
		ApprovedBy: "U0ALICE", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(overrides.DefaultTTL)}
}

// worker is the next try's pod as the Airflow scheduler creates it: the original 2Gi.
func worker(dag, task string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "etl-daily-load-9x2k", Namespace: "airflow",
			Labels:      map[string]string{"kubernetes_executor": "True", "airflow-worker": "12", "dag_id": dag, "task_id": task, "try_number": "2"},
			Annotations: map[string]string{"dag_id": dag, "task_id": task, "run_id": "scheduled__2026-11-19T00:00:00+00:00", "try_number": "2"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "apache/airflow:3.1.0",
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourceCPU: resource.MustParse("1")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
	}
}

func request(t *testing.T, pod *corev1.Pod, op admissionv1.Operation) *admissionv1.AdmissionRequest {
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	return &admissionv1.AdmissionRequest{UID: types.UID("req-1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: podResource, Namespace: pod.Namespace, Operation: op, Object: runtime.RawExtension{Raw: raw}}
}

func mutator(c *overrides.Cache) *Mutator {
	return New(Options{Cluster: "prod-eu", Overrides: c, Now: func() time.Time { return now },
		Protected: func(ns string) bool { return ns == "kube-system" || ns == "podmedic" }})
}

// applied applies a response's patch to the pod, as the API server does.
func applied(t *testing.T, pod *corev1.Pod, resp *admissionv1.AdmissionResponse) *corev1.Pod {
	t.Helper()
	require.True(t, resp.Allowed)
	require.NotNil(t, resp.PatchType)
	require.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
	p, err := jsonpatchapply.DecodePatch(resp.Patch)
	require.NoError(t, err)
	orig, _ := json.Marshal(pod)
	out, err := p.Apply(orig)
	require.NoError(t, err)
	var got corev1.Pod
	require.NoError(t, json.Unmarshal(out, &got))
	return &got
}

func memory(p *corev1.Pod) (limit, request string) {
	c := p.Spec.Containers[0]
	l, r := c.Resources.Limits[corev1.ResourceMemory], c.Resources.Requests[corev1.ResourceMemory]
	return l.String(), r.String()
}

// TestNextTryGetsTheOverride: the next try's pod of a task with an override gets its memory
// and the annotation; cpu and everything else are left as they are.
func TestNextTryGetsTheOverride(t *testing.T) {
	o := override("base", "3Gi", "2Gi")
	m := mutator(cache(o))
	pod := worker("etl_daily", "load")
	resp := m.Admit(request(t, pod, admissionv1.Create))
	got := applied(t, pod, resp)
	l, r := memory(got)
	assert.Equal(t, []string{"3Gi", "2Gi"}, []string{l, r})
	assert.Equal(t, o.ID, got.Annotations[overrides.AnnotationOverride])
	cpu := got.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]
	assert.Equal(t, "1", cpu.String())
	assert.Equal(t, "2", got.Labels["try_number"])
	assert.Equal(t, o.ID, resp.AuditAnnotations["memory-override"])

	dry := request(t, pod, admissionv1.Create)
	dry.DryRun = ptr(true)
	assert.Equal(t, resp.Patch, m.Admit(dry).Patch, "a dry run gets the same answer")
}

// TestLeftUnchanged: everything the webhook must not touch is allowed without a patch.
func TestLeftUnchanged(t *testing.T) {
	m := mutator(cache(override("base", "3Gi", "2Gi")))
	bigger := worker("etl_daily", "load")
	bigger.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("4Gi")
	bigger.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("3Gi")
	ignored := worker("etl_daily", "load")
	ignored.Annotations[annotationIgnore] = "true"
	protected := worker("etl_daily", "load")
	protected.Namespace = "kube-system"
	noIdentity := worker("etl_daily", "load")
	noIdentity.Annotations = nil
	for name, c := range map[string]struct {
		pod *corev1.Pod
		op  admissionv1.Operation
	}{
		"another task":          {worker("etl_daily", "extract"), admissionv1.Create},
		"already bigger":        {bigger, admissionv1.Create},
		"podmedic.io/ignore":    {ignored, admissionv1.Create},
		"protected namespace":   {protected, admissionv1.Create},
		"labels but no dag_id":  {noIdentity, admissionv1.Create},
		"an update, not create": {worker("etl_daily", "load"), admissionv1.Update},
	} {
		resp := m.Admit(request(t, c.pod, c.op))
		assert.True(t, resp.Allowed, name)
		assert.Nil(t, resp.Patch, name)
		assert.Equal(t, types.UID("req-1"), resp.UID, name)
	}
	expired := override("base", "3Gi", "2Gi")
	expired.ExpiresAt = now.Add(-time.Second)
	revoked := override("base", "3Gi", "2Gi")
	revoked.RevokedAt = now.Add(-time.Minute)
	for name, o := range map[string]overrides.Override{"expired": expired, "revoked": revoked} {
		resp := mutator(cache(o)).Admit(request(t, worker("etl_daily", "load"), admissionv1.Create))
		assert.Nil(t, resp.Patch, name)
	}
	other := override("base", "3Gi", "2Gi")
	other.Task.Cluster = "prod-us"
	assert.Nil(t, mutator(cache(other)).Admit(request(t, worker("etl_daily", "load"), admissionv1.Create)).Patch, "another cluster's")
}

// TestBounded: never above max_limit, never a request above the limit, never lowered.
func TestBounded(t *testing.T) {
	o := override("base", "24Gi", "20Gi")
	pod := worker("etl_daily", "load")
	got := applied(t, pod, mutator(cache(o)).Admit(request(t, pod, admissionv1.Create)))
	l, r := memory(got)
	assert.Equal(t, []string{"16Gi", "16Gi"}, []string{l, r}, "capped at max_limit; request at most the limit")

	noLimit := worker("etl_daily", "load")
	delete(noLimit.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
	got = applied(t, noLimit, mutator(cache(override("base", "3Gi", "2Gi"))).Admit(request(t, noLimit, admissionv1.Create)))
	l, _ = memory(got)
	assert.Equal(t, "3Gi", l)

	higherReq := worker("etl_daily", "load")
	higherReq.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("2560Mi")
	got = applied(t, higherReq, mutator(cache(override("base", "3Gi", "2Gi"))).Admit(request(t, higherReq, admissionv1.Create)))
	l, r = memory(got)
	assert.Equal(t, []string{"3Gi", "2560Mi"}, []string{l, r}, "the request is not lowered")
}

// TestMalformedReview: what is not an AdmissionReview gets a 400 that says what is wrong; a
// review gets a review back with the request's uid.
func TestMalformedReview(t *testing.T) {
	m := mutator(cache(override("base", "3Gi", "2Gi")))
	post := func(ct, body string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/mutate/pods", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for body, want := range map[string]string{
		`not json`: "not an AdmissionReview: invalid character",
		`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`: `not an admission.k8s.io/v1 AdmissionReview (apiVersion "admission.k8s.io/v1beta1"`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`:                            "AdmissionReview without a request",
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`:               "request without a uid",
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[1]}`:              "not an AdmissionReview: json: cannot unmarshal array",
	} {
		code, msg := post("application/json", body)
		assert.Equal(t, http.StatusBadRequest, code, body)
		assert.Contains(t, msg, want, body)
	}
	code, _ := post("text/plain", "{}")
	assert.Equal(t, http.StatusUnsupportedMediaType, code)

	review := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: request(t, worker("etl_daily", "load"), admissionv1.Create)}
	b, _ := json.Marshal(review)
	code, body := post("application/json", string(b))
	require.Equal(t, http.StatusOK, code)
	var out admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&out))
	assert.Equal(t, "AdmissionReview", out.Kind)
	assert.Equal(t, types.UID("req-1"), out.Response.UID)
	assert.NotEmpty(t, out.Response.Patch)
}

func ptr[T any](v T) *T { return &v }

// TestRuleMaxLimitInForce: an override is never applied above its rule's max_limit in force
// at admission (rules.yaml lowered since the approval), nor above its own.
func TestRuleMaxLimitInForce(t *testing.T) {
	o := override("base", "6Gi", "4Gi")
	o.Rule, o.MaxLimit = "oom", "8Gi"
	inForce := map[string]string{"oom": "4Gi"}
	m := New(Options{Cluster: "prod-eu", Overrides: cache(o), Now: func() time.Time { return now },
		MaxLimit: func(rule string) (resource.Quantity, bool) {
			q, ok := inForce[rule]
			if !ok {
				return resource.Quantity{}, false
			}
			return resource.MustParse(q), true
		}})
	pod := worker("etl_daily", "load")
	l, r := memory(applied(t, pod, m.Admit(request(t, pod, admissionv1.Create))))
	assert.Equal(t, []string{"4Gi", "4Gi"}, []string{l, r}, "capped at the rule's max_limit now; the request follows")

	delete(inForce, "oom") // the rule is gone: the override's own max_limit holds
	l, _ = memory(applied(t, pod, m.Admit(request(t, pod, admissionv1.Create))))
	assert.Equal(t, "6Gi", l)
	inForce["oom"] = "1Gi" // below what the pod asks already: its limit is not lowered
	l, r = memory(applied(t, pod, m.Admit(request(t, pod, admissionv1.Create))))
	assert.Equal(t, []string{"2Gi", "2Gi"}, []string{l, r}, "the limit kept; the request raised within it")
}

// BenchmarkAdmit is the webhook's own time per admission of the next try's pod (decode,
// look-up, patch), without TLS and the API server's round trip.
func BenchmarkAdmit(b *testing.B) {
	m := mutator(cache(override("base", "3Gi", "2Gi")))
	// A worker pod as the KubernetesExecutor makes it (env, volumes, affinity: ~10 KB).
	pod := podgen.AirflowWorker("airflow", 7)
	pod.Labels["dag_id"], pod.Labels["task_id"] = "etl_daily", "load"
	pod.Annotations["dag_id"], pod.Annotations["task_id"] = "etl_daily", "load"
	raw, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "req-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: podResource, Namespace: pod.Namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Object: pod}}})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate/pods", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		m.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
