package actions

import (
	"context"
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EvictPod evicts the target pod through the Eviction API (policy/v1), so that
// PodDisruptionBudgets count: a budget that allows no disruption now makes the action fail
// with the API's message (HTTP 429), it is not retried. Params: grace_period (seconds).
type EvictPod struct {
	Client kubernetes.Interface
}

var (
	_ Executor  = EvictPod{}
	_ Describer = EvictPod{}
)

// Execute implements Executor.
func (e EvictPod) Execute(ctx context.Context, r *Request) (string, error) {
	grace, err := gracePeriod(r)
	if err != nil {
		return "", err
	}
	ev := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Namespace: r.Target.Namespace, Name: r.Target.Name},
		DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: preconditions(r)},
	}
	err = e.Client.PolicyV1().Evictions(r.Target.Namespace).Evict(ctx, ev)
	if apierrors.IsTooManyRequests(err) {
		return "", fmt.Errorf("eviction of pod %s/%s refused (PodDisruptionBudget): %s", r.Target.Namespace, r.Target.Name, apiMessage(err))
	}
	if err := podWriteError(r, err); err != nil {
		return "", err
	}
	return fmt.Sprintf("pod %s/%s evicted%s", r.Target.Namespace, r.Target.Name, graceText(grace)), nil
}

// Describe implements Describer.
func (e EvictPod) Describe(r *Request) string {
	grace, _ := gracePeriod(r)
	return fmt.Sprintf("evict pod %s/%s%s", r.Target.Namespace, r.Target.Name, graceText(grace))
}

// apiMessage is the message of an API status error, else the error.
func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}
