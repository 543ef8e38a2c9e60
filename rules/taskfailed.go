package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// TaskFailedPlugin detects failed batch tasks: Airflow KubernetesExecutor worker pods, Spark
// driver pods and pods of Jobs that failed (phase Failed, or a main container that exited
// non-zero under restartPolicy Never). More specific kinds (OOMKilled, SIGKILL, Evicted, ...)
// win over it for the same pod. It has no thresholds.
func TaskFailedPlugin() Plugin {
	return Plugin{
		Kind: finding.TaskFailed,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return "The task run by " + r.Pod + " failed."
		},
		FailureSince: terminatedSince,
		Object:       config.ObjectPod,
		Specificity:  10,
		New:          func(config.Args) Detector { return TaskFailedDetector{} },
	}
}

// TaskFailedDetector is the TaskFailed detector.
type TaskFailedDetector struct{}

var _ Detector = TaskFailedDetector{}

// Detect implements Detector.
func (TaskFailedDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || !isTaskPod(&pod.ObjectMeta) {
		return nil
	}
	cs, term := failedContainer(pod)
	// A pod that has not failed as a whole counts when its task's own container exited non-zero
	// and will not be restarted (a sidecar may keep the pod Running); a sidecar's failure alone
	// is not the task's.
	if pod.Status.Phase != corev1.PodFailed &&
		(term == nil || pod.Spec.RestartPolicy != corev1.RestartPolicyNever || cs.Name != taskContainer(pod)) {
		return nil
	}
	f := PodFinding(finding.TaskFailed, pod, "")
	// A task pod fails once: its failed container's termination, else the pod, is the occurrence.
	f.Occurrence = "failed"
	if term != nil {
		f.Container = cs.Name
		f.Occurrence = terminationOccurrence(cs, term)
		what := "container"
		if containerIsInit(pod, cs.Name) {
			what = "init container"
		}
		line := fmt.Sprintf("%s %s exited with code %d%s, reason %s, at %s", what, cs.Name, term.ExitCode,
			exitMeaning(term.ExitCode), reasonOr(term.Reason, "none"), timeString(term.FinishedAt))
		if !term.StartedAt.IsZero() && !term.FinishedAt.IsZero() {
			line += " after " + humanDuration(term.FinishedAt.Sub(term.StartedAt.Time))
		}
		f.Evidence = append(f.Evidence, line)
		if term.Message != "" {
			f.Evidence = append(f.Evidence, "message: "+clipText(term.Message))
		}
	}
	if pod.Status.Phase == corev1.PodFailed {
		switch st := pod.Status; {
		case st.Reason != "" || st.Message != "":
			line := "pod Failed: " + reasonOr(st.Reason, "no reason")
			if st.Message != "" {
				line += ": " + clipText(st.Message)
			}
			f.Evidence = append(f.Evidence, line)
		case term == nil:
			f.Evidence = append(f.Evidence, "pod Failed; no container reports a non-zero exit")
		}
	}
	return []finding.Finding{f}
}

// isTaskPod reports whether a pod runs a batch task: an Airflow worker, a Spark driver, or a
// pod of a Job.
func isTaskPod(m *metav1.ObjectMeta) bool {
	if IsAirflowWorker(m) || m.Labels[LabelSparkRole] == "driver" {
		return true
	}
	for _, o := range m.OwnerReferences {
		if o.Kind == "Job" {
			return true
		}
	}
	return false
}

// failedContainer returns the container whose non-zero exit failed the pod: the first main
// container in spec order (the task's own container comes before sidecars; status lists are
// sorted by name), else the first init container, terminated with a non-zero code.
func failedContainer(pod *corev1.Pod) (corev1.ContainerStatus, *corev1.ContainerStateTerminated) {
	statuses := map[string]corev1.ContainerStatus{}
	for _, cs := range allStatuses(pod) {
		statuses[cs.Name] = cs
	}
	var names []string
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			names = append(names, c.Name)
		}
	}
	for _, cs := range allStatuses(pod) { // statuses of containers the spec does not list
		if containerSpec(pod, cs.Name) == nil {
			names = append(names, cs.Name)
		}
	}
	for _, name := range names {
		if cs, ok := statuses[name]; ok && cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0 {
			return cs, cs.State.Terminated
		}
	}
	return corev1.ContainerStatus{}, nil
}

// taskContainer names the container that runs a task pod's work: Airflow's base, Spark's
// driver container, else the first container.
func taskContainer(pod *corev1.Pod) string {
	for _, name := range []string{"base", driverContainer} {
		for _, c := range pod.Spec.Containers {
			if c.Name == name {
				return name
			}
		}
	}
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name
	}
	return ""
}

func containerIsInit(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// exitMeaning explains the exit codes that have a conventional meaning.
func exitMeaning(code int32) string {
	switch code {
	case 126:
		return " (command not executable)"
	case 127:
		return " (command not found)"
	case 134:
		return " (SIGABRT)"
	case 137:
		return " (SIGKILL)"
	case 139:
		return " (SIGSEGV)"
	case 143:
		return " (SIGTERM)"
	}
	return ""
}

func reasonOr(reason, def string) string {
	if reason == "" {
		return def
	}
	return reason
}
