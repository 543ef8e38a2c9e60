package actions

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DeletePod deletes the target pod with Preconditions{UID, ResourceVersion}, so that a pod
// replaced or modified since it was verified is not touched. Params: grace_period (seconds;
// default the pod's own) and force (grace period 0; the guard allows it only with an
// approval). Use it where PodDisruptionBudgets should not count: bare Airflow workers, stuck
// init pods, leftovers.
type DeletePod struct {
	Client kubernetes.Interface
}

var (
	_ Executor  = DeletePod{}
	_ Describer = DeletePod{}
)

// Execute implements Executor.
func (d DeletePod) Execute(ctx context.Context, r *Request) (string, error) {
	grace, err := gracePeriod(r)
	if err != nil {
		return "", err
	}
	opts := metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: preconditions(r)}
	err = d.Client.CoreV1().Pods(r.Target.Namespace).Delete(ctx, r.Target.Name, opts)
	if err := podWriteError(r, err); err != nil {
		return "", err
	}
	return fmt.Sprintf("pod %s/%s deleted%s", r.Target.Namespace, r.Target.Name, graceText(grace)), nil
}

// Describe implements Describer.
func (d DeletePod) Describe(r *Request) string {
	grace, _ := gracePeriod(r)
	return fmt.Sprintf("delete pod %s/%s%s", r.Target.Namespace, r.Target.Name, graceText(grace))
}

// preconditions pin the target: its UID, and its resourceVersion as pinned by the proposal,
// else as the guard just read it.
func preconditions(r *Request) *metav1.Preconditions {
	p := &metav1.Preconditions{}
	uid, rv := r.Target.UID, r.Target.ResourceVersion
	if r.Pod != nil {
		if uid == "" {
			uid = string(r.Pod.UID)
		}
		if rv == "" {
			rv = r.Pod.ResourceVersion
		}
	}
	if uid != "" {
		u := types.UID(uid)
		p.UID = &u
	}
	if rv != "" {
		p.ResourceVersion = &rv
	}
	return p
}

// gracePeriod is the grace period the action's params ask for: nil for the pod's own, 0 for
// force.
func gracePeriod(r *Request) (*int64, error) {
	if r.Action.Params["force"] == "true" {
		zero := int64(0)
		return &zero, nil
	}
	s, ok := r.Action.Params["grace_period"]
	if !ok || s == "" {
		return nil, nil
	}
	g, err := strconv.ParseInt(s, 10, 64)
	if err != nil || g < 0 {
		return nil, fmt.Errorf("grace_period %q is not a number of seconds", s)
	}
	return &g, nil
}

func graceText(g *int64) string {
	switch {
	case g == nil:
		return ""
	case *g == 0:
		return " (forced: grace period 0)"
	}
	return fmt.Sprintf(" (grace period %ds)", *g)
}

// podWriteError maps the API's answer to a write on the target pod: not found is a gone
// target, a failed precondition a changed one.
func podWriteError(r *Request, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return &TargetGoneError{Target: r.Target.String()}
	case apierrors.IsConflict(err):
		return &TargetChangedError{Target: r.Target.String(), What: "changed since it was verified (" + err.Error() + ")"}
	}
	return err
}
