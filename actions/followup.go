package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
)

// followTTL is how long a follow-up of a pod is remembered across replicas and restarts: a
// task's try does not run for longer.
const followTTL = 7 * 24 * time.Hour

// FollowPod tells the thread of the proposal that stored a memory override what became of
// it: the admission webhook gave a pod of the task's next try the override (its annotation
// podmedic.io/memory-override, the ids of the overrides applied, comma-separated), and that
// try started, succeeded or failed. Each step of a pod is told once across replicas and
// restarts. Pods without the annotation need nothing.
func (s *Service) FollowPod(ctx context.Context, pod *corev1.Pod) error {
	ann := pod.Annotations[overrides.AnnotationOverride]
	if ann == "" || s.o.Overrides == nil {
		return nil
	}
	var step string
	switch pod.Status.Phase {
	case corev1.PodRunning:
		step = "started"
	case corev1.PodSucceeded:
		step = "succeeded"
	case corev1.PodFailed:
		step = "failed"
	default:
		return nil
	}
	for _, id := range strings.Split(ann, ",") {
		key := "followup." + string(pod.UID) + "." + step + "." + id
		won, err := s.o.Claimer.Claim(ctx, key, followTTL)
		if err != nil {
			return err
		}
		if !won {
			continue
		}
		if err := s.followUp(ctx, pod, id, step); err != nil {
			if rerr := s.o.Claimer.Release(context.WithoutCancel(ctx), key); rerr != nil {
				s.log.Warn("releasing the claim of an untold follow-up failed; it may not be told",
					zap.String("pod", pod.Namespace+"/"+pod.Name), zap.Error(rerr))
			}
			return err
		}
	}
	return nil
}

func (s *Service) followUp(ctx context.Context, pod *corev1.Pod, id, step string) error {
	o, err := s.o.Overrides.Get(ctx, id)
	if errors.Is(err, overrides.ErrNotFound) {
		s.log.Info("pod carries a memory override podmedic does not know (removed since)",
			zap.String("pod", pod.Namespace+"/"+pod.Name), zap.String("override", id))
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow-up of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	p, err := s.store.Get(ctx, o.ProposalID)
	if errors.Is(err, ErrKeyNotFound) {
		return nil // the proposal is gone (past its retention): no thread to tell
	}
	if err != nil {
		return fmt.Errorf("follow-up of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	n := &finding.Notice{Type: finding.NoticeFollowUp, Proposal: p, Text: FollowUpText(pod, o, step)}
	s.log.Info("memory override follow-up", zap.String("proposal", p.ID), zap.String("text", n.Text))
	return s.notify(ctx, n)
}

// FollowUpText is the thread line for a step (started, succeeded, failed) of a pod that runs
// with override o: "try 3 of etl_daily.load started with memory limit 3Gi (override o-…,
// pod airflow/etl-daily-load-x)". The limit is the pod's own, as the API server stored it.
func FollowUpText(pod *corev1.Pod, o *overrides.Override, step string) string {
	try := "a try"
	if n := pod.Annotations["try_number"]; n != "" {
		try = "try " + n
	} else if n := pod.Labels["try_number"]; n != "" {
		try = "try " + n
	}
	limit := "no memory limit"
	for _, c := range pod.Spec.Containers {
		if c.Name != o.Task.Container {
			continue
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			limit = "memory limit " + q.String()
		}
	}
	return fmt.Sprintf("%s of %s.%s %s with %s (override %s, pod %s/%s)",
		try, o.Task.DagID, o.Task.TaskID, step, limit, o.ID, pod.Namespace, pod.Name)
}
