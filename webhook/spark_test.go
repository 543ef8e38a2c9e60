package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	jsonpatchapply "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podmedic/podmedic/overrides"
)

// airflowSparkApp is a SparkApplication as SparkKubernetesOperator creates it (task context
// labels on the driver), with fields podmedic does not read.
const airflowSparkApp = `{"apiVersion":"sparkoperator.k8s.io/v1beta2","kind":"SparkApplication",
"metadata":{"name":"sales-daily-aggregate-20261121","namespace":"airflow"},
"spec":{"type":"Scala","mode":"cluster","sparkVersion":"3.5.1","mainClass":"com.example.sales.DailyAggregate",
"driver":{"cores":1,"memory":"4g","serviceAccount":"spark","labels":{"dag_id":"etl_daily","task_id":"load","spark_kubernetes_operator":"True","try_number":"1"}},
"executor":{"cores":2,"instances":3,"memory":"8g"}}}`

func sparkRoleOverride(role, memory, overhead string) overrides.Override {
	tk := overrides.Task{Cluster: "prod-eu", Namespace: "airflow", DagID: "etl_daily", TaskID: "load", Role: role}
	return overrides.Override{ID: tk.ID(), Task: tk, Limit: "6784Mi", Memory: memory, MemoryOverhead: overhead, ProposalID: "p-1",
		ApprovedBy: "U0ALICE", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(overrides.DefaultTTL)}
}

func sparkReview(raw string) *admissionv1.AdmissionRequest {
	return &admissionv1.AdmissionRequest{UID: "req-2", Kind: metav1.GroupVersionKind{Group: "sparkoperator.k8s.io", Version: "v1beta2", Kind: "SparkApplication"},
		Resource: sparkResource, Namespace: "airflow", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(raw)}}
}

// TestSparkApplicationGetsTheOverride: the next application of a task with an override of its
// driver gets the driver's memoryOverhead (added: it had none) and the annotation; the rest of
// the object is untouched; an application asking for more, another task's, or one podmedic
// must ignore is unchanged.
func TestSparkApplicationGetsTheOverride(t *testing.T) {
	o := sparkRoleOverride("driver", "4g", "2688m")
	m := New(Options{Cluster: "prod-eu", Overrides: cache(o, override("base", "3Gi", "2Gi")), Now: func() time.Time { return now }})
	resp := m.Admit(sparkReview(airflowSparkApp))
	require.True(t, resp.Allowed)
	require.NotNil(t, resp.Patch, "patched")
	p, err := jsonpatchapply.DecodePatch(resp.Patch)
	require.NoError(t, err)
	out, err := p.Apply([]byte(airflowSparkApp))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	driver := got["spec"].(map[string]any)["driver"].(map[string]any)
	assert.Equal(t, "2688m", driver["memoryOverhead"])
	assert.Equal(t, "4g", driver["memory"])
	assert.Equal(t, "spark", driver["serviceAccount"], "the rest is untouched")
	assert.Equal(t, o.ID, got["metadata"].(map[string]any)["annotations"].(map[string]any)[overrides.AnnotationOverride])
	assert.NotContains(t, got["spec"].(map[string]any)["executor"], "memoryOverhead", "no override of the executors")

	bigger := `{"apiVersion":"sparkoperator.k8s.io/v1beta2","kind":"SparkApplication","metadata":{"name":"x","namespace":"airflow"},
"spec":{"type":"Scala","driver":{"memory":"4g","memoryOverhead":"3g","labels":{"dag_id":"etl_daily","task_id":"load"}},"executor":{}}}`
	other := `{"apiVersion":"sparkoperator.k8s.io/v1beta2","kind":"SparkApplication","metadata":{"name":"y","namespace":"airflow"},
"spec":{"type":"Scala","driver":{"memory":"4g","labels":{"dag_id":"etl_daily","task_id":"extract"}},"executor":{}}}`
	ignored := `{"apiVersion":"sparkoperator.k8s.io/v1beta2","kind":"SparkApplication","metadata":{"name":"z","namespace":"airflow","annotations":{"podmedic.io/ignore":"true"}},
"spec":{"type":"Scala","driver":{"memory":"4g","labels":{"dag_id":"etl_daily","task_id":"load"}},"executor":{}}}`
	for name, raw := range map[string]string{"asks for more": bigger, "another task": other, "ignored": ignored} {
		resp := m.Admit(sparkReview(raw))
		assert.True(t, resp.Allowed, name)
		assert.Nil(t, resp.Patch, name)
	}
}

// TestSparkApplicationWithinBounds: the raise of a role is capped at the namespace's
// LimitRange maximum (the pods the operator creates from the settings would be refused past
// it), shortening what the override raised, in whole MiB; an application already at the bound
// is left as it is.
func TestSparkApplicationWithinBounds(t *testing.T) {
	admit := func(o overrides.Override, b Bounds, raw string) map[string]any {
		t.Helper()
		m := New(Options{Cluster: "prod-eu", Overrides: cache(o), Now: func() time.Time { return now }, Bounds: b})
		resp := m.Admit(sparkReview(raw))
		require.True(t, resp.Allowed)
		if resp.Patch == nil {
			return nil
		}
		p, err := jsonpatchapply.DecodePatch(resp.Patch)
		require.NoError(t, err)
		out, err := p.Apply([]byte(raw))
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(out, &got))
		return got["spec"].(map[string]any)["driver"].(map[string]any)
	}
	// The driver asks for 4g and Spark's default overhead (409m); the override, 4g + 2688m.
	driver := admit(sparkRoleOverride("driver", "4g", "2688m"), bounds(t, limitRange(corev1.LimitTypeContainer, "6Gi")), airflowSparkApp)
	assert.Equal(t, "4g", driver["memory"])
	assert.Equal(t, "2g", driver["memoryOverhead"], "4g + 2g = the LimitRange's 6Gi")

	// A heap override (memory raised, overhead kept), under a pod maximum of 10G (not whole MiB).
	driver = admit(sparkRoleOverride("driver", "12g", "409m"), bounds(t, limitRange(corev1.LimitTypePod, "10G")), airflowSparkApp)
	assert.Equal(t, "9127m", driver["memory"], "10G = 9536.7Mi, less the 409m overhead, in whole MiB")
	assert.Equal(t, "409m", driver["memoryOverhead"], "written out: Spark's default would grow with the heap, past the bound")

	// Within the bound: as approved.
	driver = admit(sparkRoleOverride("driver", "4g", "2688m"), bounds(t, limitRange(corev1.LimitTypeContainer, "16Gi")), airflowSparkApp)
	assert.Equal(t, "2688m", driver["memoryOverhead"])

	// At the bound already: unchanged.
	assert.Nil(t, admit(sparkRoleOverride("driver", "4g", "2688m"), bounds(t, limitRange(corev1.LimitTypeContainer, "4Gi")), airflowSparkApp))
}
