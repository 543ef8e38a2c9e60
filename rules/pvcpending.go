package rules

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// PVCPendingPlugin detects PersistentVolumeClaims that stay Pending for longer than
// pvc_pending_timeout after their creation, with the provisioner's events as evidence. A claim
// of a WaitForFirstConsumer storage class that no pod uses yet is waiting as designed and is
// not a finding.
func PVCPendingPlugin() Plugin {
	return Plugin{
		Kind: finding.PVCPending,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return "PersistentVolumeClaim " + r.Object + " is stuck Pending."
		},
		Object:      config.ObjectPVC,
		Specificity: 0, // a claim, not a pod failure: never ranked against pod findings
		DefaultArgs: func() config.Args { return DefaultPVCPendingArgs() },
		New: func(a config.Args) Detector {
			return PVCPendingDetector{Args: *argsOf(a, DefaultPVCPendingArgs)}
		},
	}
}

// PVCPendingArgs are the PVCPending thresholds.
type PVCPendingArgs struct {
	// PVCPendingTimeout is how long a claim may stay Pending after its creation. Default 10m.
	PVCPendingTimeout config.Duration `yaml:"pvc_pending_timeout"`
}

// DefaultPVCPendingArgs returns the default PVCPending thresholds.
func DefaultPVCPendingArgs() *PVCPendingArgs {
	return &PVCPendingArgs{PVCPendingTimeout: config.Duration{Duration: 10 * time.Minute}}
}

// Validate implements Args.
func (a *PVCPendingArgs) Validate() []config.FieldError {
	return positiveDuration("pvc_pending_timeout", a.PVCPendingTimeout)
}

// PVCPendingDetector is the PVCPending detector.
type PVCPendingDetector struct{ Args PVCPendingArgs }

var _ Detector = PVCPendingDetector{}

// Annotations the PV controller and the scheduler set on claims.
const (
	AnnotationSelectedNode       = "volume.kubernetes.io/selected-node"
	AnnotationStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annotationBetaProvisioner    = "volume.beta.kubernetes.io/storage-provisioner"

	reasonWaitForFirstConsumer = "WaitForFirstConsumer"
	reasonExternalProvisioning = "ExternalProvisioning"
	reasonProvisioningFailed   = "ProvisioningFailed"
)

// bindingReasons are the PV controller's and provisioners' events about a claim's binding.
var bindingReasons = map[string]bool{
	reasonWaitForFirstConsumer: true, reasonExternalProvisioning: true, reasonProvisioningFailed: true,
	"Provisioning": true, "FailedBinding": true, "WaitForPodScheduled": true, "ProvisioningSucceeded": true,
}

// Detect implements Detector.
func (d PVCPendingDetector) Detect(in Input) []finding.Finding {
	pvc := in.PVC
	if pvc == nil || pvc.DeletionTimestamp != nil || (pvc.Status.Phase != corev1.ClaimPending && pvc.Status.Phase != "") {
		return nil
	}
	waited := in.Now.Sub(pvc.CreationTimestamp.Time)
	if waited <= d.Args.PVCPendingTimeout.Duration {
		return nil
	}
	var binding []*corev1.Event
	for _, e := range objectEvents(in.View, config.ObjectPVC, &pvc.ObjectMeta) {
		if bindingReasons[e.Reason] {
			binding = append(binding, e)
		}
	}
	node := pvc.Annotations[AnnotationSelectedNode]
	if len(binding) > 0 && node == "" && newestEvent(binding).Reason == reasonWaitForFirstConsumer {
		return nil // no pod uses it yet: the storage class binds on first use
	}
	f := finding.Finding{
		Kind:      finding.PVCPending,
		Namespace: pvc.Namespace,
		PVC:       pvc.Name,
		UID:       string(pvc.UID),
		Owner:     OwnerOf(&pvc.ObjectMeta),
		// A claim is Pending once, from its creation until it binds.
		Occurrence: timeString(pvc.CreationTimestamp),
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("PVC %s is Pending for %s (since %s), timeout %s",
		pvc.Name, humanDuration(waited), timeString(pvc.CreationTimestamp), humanDuration(d.Args.PVCPendingTimeout.Duration)))
	if s := claimSpec(pvc); s != "" {
		f.Evidence = append(f.Evidence, s)
	}
	if node != "" {
		f.Evidence = append(f.Evidence, "its first consumer was scheduled to node "+node+": the volume should have been provisioned there")
	}
	// Failures first (the root cause), then one line for each kind of wait.
	var failures, waits []*corev1.Event
	for _, e := range binding {
		switch e.Reason {
		case reasonProvisioningFailed, "FailedBinding":
			failures = append(failures, e)
		case reasonExternalProvisioning, reasonWaitForFirstConsumer, "WaitForPodScheduled":
			waits = append(waits, e)
		}
	}
	for _, e := range newestEvents(failures, 2) {
		f.Evidence = append(f.Evidence, eventLine(e))
	}
	for _, e := range newestEvents(waits, 3) {
		line := eventLine(e)
		switch e.Reason {
		case reasonExternalProvisioning:
			line = "still waiting for the external provisioner to create the volume: " + line
		case reasonWaitForFirstConsumer:
			line = "waited for its first consumer: " + line
		}
		f.Evidence = append(f.Evidence, line)
	}
	if len(binding) == 0 {
		f.Evidence = append(f.Evidence, "no binding or provisioning events: check that the storage class exists and its provisioner runs")
	}
	return []finding.Finding{f}
}

// claimSpec describes what a claim asks for: class, provisioner, access modes and size.
func claimSpec(pvc *corev1.PersistentVolumeClaim) string {
	var parts []string
	if c := pvc.Spec.StorageClassName; c != nil && *c != "" {
		parts = append(parts, "storage class "+*c)
	} else {
		parts = append(parts, "no storage class")
	}
	p := pvc.Annotations[AnnotationStorageProvisioner]
	if p == "" {
		p = pvc.Annotations[annotationBetaProvisioner]
	}
	if p != "" {
		parts = append(parts, "provisioner "+p)
	}
	for _, m := range pvc.Spec.AccessModes {
		parts = append(parts, string(m))
	}
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		parts = append(parts, "requests "+q.String())
	}
	return strings.Join(parts, ", ")
}

// newestEvent returns the most recently seen of events.
func newestEvent(events []*corev1.Event) *corev1.Event {
	var out *corev1.Event
	for _, e := range events {
		if out == nil || !eventLastSeen(e).Before(eventLastSeen(out)) {
			out = e
		}
	}
	return out
}
