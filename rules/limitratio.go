package rules

import (
	"fmt"
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// LimitRatioPlugin is an advisory: containers of running or pending pods whose memory limit is
// more than max_limit_request_ratio times their memory request, or that have no memory limit.
// Requests far below limits let the scheduler overpack nodes, which then run out of memory. It
// reports once per owner (Deployment's ReplicaSet, StatefulSet, Job, SparkApplication, Airflow
// task, ...) and container, not once per pod.
func LimitRatioPlugin() Plugin {
	return Plugin{
		Kind: finding.LimitRatio,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return "The memory limit of " + r.Container + " is far above its request: nodes full of such pods run out of memory."
		},
		Object:      config.ObjectPod,
		Specificity: 0, // independent advisory: kept alongside the pod's failure finding
		DefaultArgs: func() config.Args { return DefaultLimitRatioArgs() },
		New: func(a config.Args) Detector {
			return LimitRatioDetector{Args: *argsOf(a, DefaultLimitRatioArgs)}
		},
	}
}

// LimitRatioArgs are the LimitRatio thresholds.
type LimitRatioArgs struct {
	// MaxLimitRequestRatio is the largest memory limit/request ratio that is fine (request >=
	// limit / ratio). Default 1.5.
	MaxLimitRequestRatio float64 `yaml:"max_limit_request_ratio"`
}

// DefaultLimitRatioArgs returns the default LimitRatio thresholds.
func DefaultLimitRatioArgs() *LimitRatioArgs { return &LimitRatioArgs{MaxLimitRequestRatio: 1.5} }

// Validate implements Args.
func (a *LimitRatioArgs) Validate() []config.FieldError {
	if math.IsNaN(a.MaxLimitRequestRatio) || math.IsInf(a.MaxLimitRequestRatio, 0) || a.MaxLimitRequestRatio < 1 {
		return []config.FieldError{{Field: "max_limit_request_ratio", Message: "must be a number of at least 1"}}
	}
	return nil
}

// LimitRatioDetector is the LimitRatio detector.
type LimitRatioDetector struct{ Args LimitRatioArgs }

var _ Detector = LimitRatioDetector{}

// Detect implements Detector.
func (d LimitRatioDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || podDone(pod) {
		return nil
	}
	owner := limitOwner(pod)
	maxRatio := d.Args.MaxLimitRequestRatio
	var out []finding.Finding
	for _, c := range pod.Spec.Containers {
		line := limitAdvice(c, maxRatio)
		if line == "" {
			continue
		}
		f := PodFinding(finding.LimitRatio, pod, c.Name)
		// The advice is about the pod template, which all the pods of one owner share: 500
		// pods of one owner are one finding. Finding.Key hashes kind, namespace, UID, PVC,
		// container and occurrence, so the pod's UID is left out and the owner goes into the
		// occurrence (the pod's name stays, to show one example).
		f.UID = ""
		f.Occurrence = owner + "/" + c.Name
		f.Evidence = append(f.Evidence, line, "owner "+owner+": one finding for all its pods (e.g. "+pod.Name+")")
		out = append(out, f)
	}
	return out
}

// limitAdvice describes what is wrong with a container's memory limit and request, or "".
func limitAdvice(c corev1.Container, maxRatio float64) string {
	lim, hasLim := c.Resources.Limits[corev1.ResourceMemory]
	req, hasReq := c.Resources.Requests[corev1.ResourceMemory]
	if hasLim && !hasReq {
		req, hasReq = lim, true // the API server defaults the request to the limit
	}
	maxStr := strconv.FormatFloat(maxRatio, 'f', -1, 64)
	switch {
	case !hasLim && (!hasReq || req.IsZero()):
		return fmt.Sprintf("container %s has neither a memory request nor a memory limit: the scheduler does not count its memory and it may use all of its node's",
			c.Name)
	case !hasLim:
		return fmt.Sprintf("container %s has no memory limit (request %s): it may use all of its node's memory; set a limit of at most %s (%sx the request)",
			c.Name, req.String(), formatMemory(float64(req.Value())*maxRatio, false), maxStr)
	case req.IsZero():
		return fmt.Sprintf("container %s has a memory limit of %s and a request of 0: set the request to at least %s",
			c.Name, lim.String(), formatMemory(float64(lim.Value())/maxRatio, true))
	}
	ratio := float64(lim.Value()) / float64(req.Value())
	if ratio <= maxRatio+1e-9 {
		return ""
	}
	return fmt.Sprintf("container %s: memory limit %s is %sx its request %s (max %s): the scheduler places pods by their requests, so nodes full of these run out of memory; set the request to at least %s or the limit to at most %s",
		c.Name, lim.String(), strconv.FormatFloat(math.Round(ratio*100)/100, 'f', -1, 64), req.String(), maxStr,
		formatMemory(float64(lim.Value())/maxRatio, true), formatMemory(float64(req.Value())*maxRatio, false))
}

// limitOwner names what a pod's template belongs to: its controller (kind/name), else for
// bare Airflow workers the DAG and task, for Spark pods the application and role, else the pod.
func limitOwner(pod *corev1.Pod) string {
	o := OwnerOf(&pod.ObjectMeta)
	if o.Kind != "" && o.Kind != "Pod" {
		return o.Kind + "/" + o.Name
	}
	if a := AirflowIdentity(&pod.ObjectMeta); a != nil {
		return "airflow/" + a.DagID + "/" + a.TaskID
	}
	if s := SparkIdentity(&pod.ObjectMeta); s != nil && s.AppName != "" {
		return "spark/" + s.AppName + "/" + s.Role
	}
	if o.Kind != "" {
		return o.Kind + "/" + o.Name
	}
	return "Pod/" + pod.Name
}

// formatMemory formats a byte count as Gi when whole, else as Mi rounded up or down.
func formatMemory(b float64, up bool) string {
	const mi, gi = 1 << 20, 1 << 30
	if g := b / gi; g == math.Trunc(g) && g > 0 {
		return fmt.Sprintf("%.0fGi", g)
	}
	m := b / mi
	if up {
		m = math.Ceil(m - 1e-9)
	} else {
		m = math.Floor(m + 1e-9)
	}
	return fmt.Sprintf("%.0fMi", m)
}
