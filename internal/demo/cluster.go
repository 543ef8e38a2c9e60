package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apply plays one step against the cluster: objects are created as the API server stores them
// (creation time = the step's time), then pod statuses are written as a kubelet writes them.
func apply(ctx context.Context, c kubernetes.Interface, st Step) (pods []string, err error) {
	for i, raw := range st.Create {
		var head metav1.TypeMeta
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("create[%d]: %w", i, err)
		}
		switch head.Kind {
		case "Pod":
			var p corev1.Pod
			if err := strictJSON(raw, &p); err != nil {
				return nil, fmt.Errorf("create[%d]: %w", i, err)
			}
			stamp(&p.ObjectMeta, st.Time())
			status := p.Status
			p.Status = corev1.PodStatus{Phase: corev1.PodPending}
			created, err := c.CoreV1().Pods(p.Namespace).Create(ctx, &p, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
			}
			if status.Phase != "" {
				created.Status = status
				if _, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
					return nil, fmt.Errorf("status of pod %s/%s: %w", p.Namespace, p.Name, err)
				}
			}
			pods = append(pods, p.Namespace+"/"+p.Name)
		case "PersistentVolumeClaim":
			var pvc corev1.PersistentVolumeClaim
			if err := strictJSON(raw, &pvc); err != nil {
				return nil, fmt.Errorf("create[%d]: %w", i, err)
			}
			stamp(&pvc.ObjectMeta, st.Time())
			if _, err := c.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(ctx, &pvc, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("create pvc %s/%s: %w", pvc.Namespace, pvc.Name, err)
			}
		case "Event":
			var e corev1.Event
			if err := strictJSON(raw, &e); err != nil {
				return nil, fmt.Errorf("create[%d]: %w", i, err)
			}
			stamp(&e.ObjectMeta, st.Time())
			if _, err := c.CoreV1().Events(e.Namespace).Create(ctx, &e, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("create event %s/%s: %w", e.Namespace, e.Name, err)
			}
		default:
			return nil, fmt.Errorf("create[%d]: kind %q (want Pod, PersistentVolumeClaim or Event)", i, head.Kind)
		}
	}
	for _, w := range st.Status {
		ns, name, _ := strings.Cut(w.Pod, "/")
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("status of pod %s: %w", w.Pod, err)
		}
		p.Status = w.Status
		if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("status of pod %s: %w", w.Pod, err)
		}
	}
	return pods, nil
}

func stamp(m *metav1.ObjectMeta, t time.Time) {
	if m.CreationTimestamp.IsZero() {
		m.CreationTimestamp = metav1.Time{Time: t}
	}
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
