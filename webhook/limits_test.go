package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// bounds are ListerBounds over these objects, as the informers would list them.
func bounds(t *testing.T, objs ...any) ListerBounds {
	lr := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	rq := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		switch o.(type) {
		case *corev1.LimitRange:
			require.NoError(t, lr.Add(o))
		case *corev1.ResourceQuota:
			require.NoError(t, rq.Add(o))
		}
	}
	return ListerBounds{LimitRanges: listerscorev1.NewLimitRangeLister(lr), Quotas: listerscorev1.NewResourceQuotaLister(rq)}
}

func limitRange(typ corev1.LimitType, max string) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "lr-" + string(typ)},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: typ,
			Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(max)}}}}}
}

func quota(name corev1.ResourceName, hard, used string) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "q-" + string(name)},
		Status: corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{name: resource.MustParse(hard)},
			Used: corev1.ResourceList{name: resource.MustParse(used)}}}
}

// TestBoundsOfTheNamespace: a raise is capped at the LimitRange's container maximum; a pod
// the LimitRange's pod maximum or a ResourceQuota would refuse once raised is left as it is,
// and the audit annotation says why. podmedic never makes a pod creation fail.
func TestBoundsOfTheNamespace(t *testing.T) {
	admit := func(b Bounds) (*corev1.Pod, *admissionv1.AdmissionResponse) {
		m := New(Options{Cluster: "prod-eu", Overrides: cache(override("base", "6Gi", "4Gi")), Now: mutator(nil).o.Now, Bounds: b})
		pod := worker("etl_daily", "load")
		return pod, m.Admit(request(t, pod, admissionv1.Create))
	}

	pod, resp := admit(bounds(t, limitRange(corev1.LimitTypeContainer, "5Gi")))
	l, r := memory(applied(t, pod, resp))
	assert.Equal(t, []string{"5Gi", "4Gi"}, []string{l, r}, "capped at the LimitRange's container maximum")

	pod, resp = admit(bounds(t, quota(corev1.ResourceLimitsMemory, "100Gi", "90Gi")))
	l, _ = memory(applied(t, pod, resp))
	assert.Equal(t, "6Gi", l, "room enough in the quota")

	for name, b := range map[string]ListerBounds{
		"pod maximum":        bounds(t, limitRange(corev1.LimitTypePod, "4Gi")),
		"limits quota":       bounds(t, quota(corev1.ResourceLimitsMemory, "100Gi", "96Gi")),
		"requests quota":     bounds(t, quota(corev1.ResourceRequestsMemory, "50Gi", "47Gi")),
		"plain memory quota": bounds(t, quota(corev1.ResourceMemory, "50Gi", "47Gi")),
	} {
		_, resp := admit(b)
		assert.True(t, resp.Allowed, name)
		assert.Nil(t, resp.Patch, "%s: left unchanged", name)
		assert.NotEmpty(t, resp.AuditAnnotations["memory-override-skipped"], name)
	}
	_, resp = admit(bounds(t, quota(corev1.ResourceLimitsMemory, "100Gi", "96Gi")))
	assert.Equal(t, "a ResourceQuota has 4Gi of limits.memory left; the raised pod needs 6Gi", resp.AuditAnnotations["memory-override-skipped"])
}
