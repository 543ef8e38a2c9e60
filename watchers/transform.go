package watchers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// keptAnnotations are the only annotations that survive trimming: Airflow task identity (the
// labels are sanitized, the annotations are exact), the memory override the admission webhook
// applied (overrides.AnnotationOverride), and the disruption opt-outs the eviction advice
// refers to.
var keptAnnotations = map[string]bool{
	"dag_id": true, "task_id": true, "run_id": true, "try_number": true, "map_index": true,
	"execution_date":                                 true,
	"podmedic.io/memory-override":                    true,
	"cluster-autoscaler.kubernetes.io/safe-to-evict": true,
	"karpenter.sh/do-not-disrupt":                    true,
	"volume.kubernetes.io/selected-node":             true,
	"volume.kubernetes.io/storage-provisioner":       true,
	"volume.beta.kubernetes.io/storage-provisioner":  true,
}

// maxMessage bounds free-text messages kept from statuses and events.
const maxMessage = 1024

// Transform trims Pods, PVCs and Events to what detectors need. Pods become compact records
// of their trimmed JSON (see podRecord). It is idempotent and safe to use as a SharedInformer
// transform; other objects (records and tombstones included) pass through unchanged.
func Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return newPodRecord(o)
	case *corev1.PersistentVolumeClaim:
		return TrimPVC(o), nil
	case *corev1.Event:
		return TrimEvent(o), nil
	}
	return obj, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:                       m.Name,
		Namespace:                  m.Namespace,
		UID:                        m.UID,
		ResourceVersion:            m.ResourceVersion,
		CreationTimestamp:          m.CreationTimestamp,
		DeletionTimestamp:          m.DeletionTimestamp,
		DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
		Labels:                     m.Labels,
		OwnerReferences:            m.OwnerReferences,
	}
	for k, v := range m.Annotations {
		if keptAnnotations[k] {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{
			Name:          c.Name,
			Resources:     corev1.ResourceRequirements{Limits: memoryOnly(c.Resources.Limits), Requests: memoryOnly(c.Resources.Requests)},
			RestartPolicy: c.RestartPolicy, // an init container with Always is a sidecar
		}
		if c.LivenessProbe != nil {
			// Keep that a liveness probe exists (SIGKILL evidence), not its definition.
			out[i].LivenessProbe = &corev1.Probe{}
		}
	}
	return out
}

// memoryOnly keeps the memory quantity of a resource list (what the OOM, limit-ratio and
// memory-limit logic reads), nil when there is none.
func memoryOnly(l corev1.ResourceList) corev1.ResourceList {
	q, ok := l[corev1.ResourceMemory]
	if !ok {
		return nil
	}
	if len(l) == 1 {
		return l
	}
	return corev1.ResourceList{corev1.ResourceMemory: q}
}

func trimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(ss) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{
			Name:                 s.Name,
			State:                trimState(s.State),
			LastTerminationState: trimState(s.LastTerminationState),
			RestartCount:         s.RestartCount,
			Started:              s.Started,
		}
	}
	return out
}

func trimState(s corev1.ContainerState) corev1.ContainerState {
	out := corev1.ContainerState{Running: s.Running}
	if w := s.Waiting; w != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: clip(w.Message)}
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, Message: clip(t.Message),
			StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		}
	}
	return out
}

// keptConditions are the pod conditions detectors read: scheduling (Unschedulable), init
// containers (InitStuck) and disruption (Evicted). Ready, ContainersReady and
// PodReadyToStartContainers follow the container statuses, which are kept.
var keptConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled: true, corev1.PodInitialized: true, corev1.DisruptionTarget: true,
}

// TrimPod keeps what the detectors read: identity, labels, the task-identity annotations,
// owners, container names, memory requests and limits and restart policies, PVC volumes, the
// node, the grace and deadline settings, and the status (phase, reason, message, start time,
// container states, and the scheduling, init and disruption conditions).
func TrimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{},
		ObjectMeta: trimMeta(p.ObjectMeta),
		Spec: corev1.PodSpec{
			InitContainers:                trimContainers(p.Spec.InitContainers),
			Containers:                    trimContainers(p.Spec.Containers),
			RestartPolicy:                 p.Spec.RestartPolicy,
			TerminationGracePeriodSeconds: p.Spec.TerminationGracePeriodSeconds,
			ActiveDeadlineSeconds:         p.Spec.ActiveDeadlineSeconds,
			NodeName:                      p.Spec.NodeName,
		},
		Status: corev1.PodStatus{
			Phase:                 p.Status.Phase,
			Reason:                p.Status.Reason,
			Message:               clip(p.Status.Message),
			StartTime:             p.Status.StartTime,
			InitContainerStatuses: trimStatuses(p.Status.InitContainerStatuses),
			ContainerStatuses:     trimStatuses(p.Status.ContainerStatuses),
		},
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName}}})
		}
	}
	for _, c := range p.Status.Conditions {
		if keptConditions[c.Type] {
			out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: clip(c.Message)})
		}
	}
	return out
}

// TrimPVC keeps identity, class, access modes, size, volume name and status.
func TrimPVC(c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: trimMeta(c.ObjectMeta),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      c.Spec.AccessModes,
			Resources:        corev1.VolumeResourceRequirements{Requests: c.Spec.Resources.Requests},
			VolumeName:       c.Spec.VolumeName,
			StorageClassName: c.Spec.StorageClassName,
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: c.Status.Phase},
	}
}

// TrimEvent keeps what was reported about which object, by whom, how often and when.
func TrimEvent(e *corev1.Event) *corev1.Event {
	m := trimMeta(e.ObjectMeta)
	m.Labels, m.Annotations, m.OwnerReferences = nil, nil, nil
	return &corev1.Event{
		ObjectMeta: m,
		InvolvedObject: corev1.ObjectReference{Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace,
			Name: e.InvolvedObject.Name, UID: e.InvolvedObject.UID, FieldPath: e.InvolvedObject.FieldPath},
		Reason:              e.Reason,
		Message:             clip(e.Message),
		Source:              e.Source,
		FirstTimestamp:      e.FirstTimestamp,
		LastTimestamp:       e.LastTimestamp,
		EventTime:           e.EventTime,
		Count:               e.Count,
		Type:                e.Type,
		ReportingController: e.ReportingController,
		Series:              e.Series,
	}
}

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "…"
}
