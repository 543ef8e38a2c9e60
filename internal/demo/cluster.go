package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/internal/memapi"
	"github.com/podmedic/podmedic/spark"
)

// newCluster returns the simulated cluster: an in-memory Kubernetes API on the night's clock
// (objects created without a creationTimestamp get the step's time), and client-go's real
// clientset talking to it without a network.
func newCluster(now func() time.Time) (*memapi.Server, kubernetes.Interface, dynamic.Interface, error) {
	api := memapi.New(memapi.Options{Now: now})
	client, err := api.Clientset("http://podmedic-demo.invalid")
	if err != nil {
		return nil, nil, nil, err
	}
	dyn, err := api.Dynamic("http://podmedic-demo.invalid")
	if err != nil {
		return nil, nil, nil, err
	}
	return api, client, dyn, nil
}

// apply plays one step against the cluster: objects are created (the API server sets the
// status of a new pod or claim, Pending), the statuses the scenario gives them are written as
// the kubelet and the volume controller write them, then the step's pod statuses.
func apply(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, st Step) (pods []string, err error) {
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
			status := p.Status
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
			status := pvc.Status
			created, err := c.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(ctx, &pvc, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("create pvc %s/%s: %w", pvc.Namespace, pvc.Name, err)
			}
			if status.Phase != "" {
				created.Status = status
				if _, err := c.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
					return nil, fmt.Errorf("status of pvc %s/%s: %w", pvc.Namespace, pvc.Name, err)
				}
			}
		case "Event":
			var e corev1.Event
			if err := strictJSON(raw, &e); err != nil {
				return nil, fmt.Errorf("create[%d]: %w", i, err)
			}
			if _, err := c.CoreV1().Events(e.Namespace).Create(ctx, &e, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("create event %s/%s: %w", e.Namespace, e.Name, err)
			}
		case spark.KindApplication:
			app := &unstructured.Unstructured{}
			if err := app.UnmarshalJSON(raw); err != nil {
				return nil, fmt.Errorf("create[%d]: %w", i, err)
			}
			status, _, _ := unstructured.NestedMap(app.Object, "status")
			created, err := dyn.Resource(spark.ApplicationResource).Namespace(app.GetNamespace()).Create(ctx, app, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("create SparkApplication %s/%s: %w", app.GetNamespace(), app.GetName(), err)
			}
			if status != nil {
				if err := appStatus(ctx, dyn, created, status); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("create[%d]: kind %q (want Pod, PersistentVolumeClaim, Event or SparkApplication)", i, head.Kind)
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
	for _, w := range st.Apps {
		ns, name, _ := strings.Cut(w.App, "/")
		app, err := dyn.Resource(spark.ApplicationResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("status of SparkApplication %s: %w", w.App, err)
		}
		if err := appStatus(ctx, dyn, app, w.Status); err != nil {
			return nil, err
		}
	}
	return pods, nil
}

// appStatus writes the status of a SparkApplication, as the Spark operator does.
func appStatus(ctx context.Context, dyn dynamic.Interface, app *unstructured.Unstructured, status map[string]any) error {
	app.Object["status"] = status
	_, err := dyn.Resource(spark.ApplicationResource).Namespace(app.GetNamespace()).UpdateStatus(ctx, app, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("status of SparkApplication %s/%s: %w", app.GetNamespace(), app.GetName(), err)
	}
	return nil
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
