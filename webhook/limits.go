package webhook

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
)

// Bounds are what a namespace allows a pod: the LimitRanges' memory maximum per container and
// per pod, and what its ResourceQuotas on memory have left. The webhook caps a raise at the
// maximum and leaves a pod unchanged when the quota would refuse it: a raised pod that the API
// server then refuses would keep the task from starting at all.
type Bounds interface {
	// MaxMemory is the smallest LimitRange maximum of memory for a container and for a pod
	// in the namespace (a zero quantity: none).
	MaxMemory(namespace string) (container, pod resource.Quantity)
	// QuotaLeft is the smallest room left in the namespace's ResourceQuotas for memory
	// limits and requests (limits.memory; requests.memory or memory), and whether any quota
	// bounds each.
	QuotaLeft(namespace string) (limits, requests resource.Quantity, limited, requested bool)
}

// ListerBounds reads Bounds from informers' listers (the API server's view, kept current; no
// call per admission).
type ListerBounds struct {
	LimitRanges listerscorev1.LimitRangeLister
	Quotas      listerscorev1.ResourceQuotaLister
}

// MaxMemory implements Bounds.
func (b ListerBounds) MaxMemory(namespace string) (container, pod resource.Quantity) {
	lrs, err := b.LimitRanges.LimitRanges(namespace).List(labels.Everything())
	if err != nil {
		return container, pod
	}
	for _, lr := range lrs {
		for _, item := range lr.Spec.Limits {
			m, ok := item.Max[corev1.ResourceMemory]
			if !ok {
				continue
			}
			switch item.Type {
			case corev1.LimitTypeContainer:
				container = smaller(container, m)
			case corev1.LimitTypePod:
				pod = smaller(pod, m)
			}
		}
	}
	return container, pod
}

// QuotaLeft implements Bounds.
func (b ListerBounds) QuotaLeft(namespace string) (limits, requests resource.Quantity, limited, requested bool) {
	qs, err := b.Quotas.ResourceQuotas(namespace).List(labels.Everything())
	if err != nil {
		return limits, requests, false, false
	}
	left := func(q *corev1.ResourceQuota, name corev1.ResourceName) (resource.Quantity, bool) {
		hard, ok := q.Status.Hard[name]
		if !ok {
			if hard, ok = q.Spec.Hard[name]; !ok {
				return resource.Quantity{}, false
			}
		}
		used := q.Status.Used[name]
		hard.Sub(used)
		return hard, true
	}
	for _, q := range qs {
		if l, ok := left(q, corev1.ResourceLimitsMemory); ok {
			if !limited || l.Cmp(limits) < 0 {
				limits = l
			}
			limited = true
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceRequestsMemory, corev1.ResourceMemory} {
			if r, ok := left(q, name); ok {
				if !requested || r.Cmp(requests) < 0 {
					requests = r
				}
				requested = true
			}
		}
	}
	return limits, requests, limited, requested
}

// smaller is the smaller of a and b, a zero a meaning "none yet".
func smaller(a, b resource.Quantity) resource.Quantity {
	if a.IsZero() || b.Cmp(a) < 0 {
		return b
	}
	return a
}
