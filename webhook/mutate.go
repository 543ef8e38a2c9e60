// Package webhook is podmedic's mutating admission webhook: POST /mutate/pods raises the
// memory of a new Airflow worker pod whose task has a memory override (package overrides), so
// the task's next try runs with the memory an approval gave it.
//
// The handler is pure: it answers from memory (the overrides Cache) and writes nothing, so a
// request.dryRun gets the same answer, and an answer takes microseconds. It never makes a pod
// creation fail: anything it cannot or should not change is allowed unchanged, and the
// MutatingWebhookConfiguration's failurePolicy is Ignore, so Airflow never waits for podmedic.
// Only a request that is not an AdmissionReview at all is refused (400).
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/overrides"
)

// Lookup finds the overrides in force for a task (the overrides Cache).
type Lookup interface {
	Find(cluster, namespace, dag, task string, now time.Time) []overrides.Override
}

// Options configure a Mutator.
type Options struct {
	Cluster   string
	Overrides Lookup
	// Protected reports the namespaces podmedic never changes anything in.
	Protected func(namespace string) bool
	// Bounds are the namespaces' LimitRanges and ResourceQuotas (nil: none are checked).
	Bounds Bounds
	// MaxLimit returns the max_limit in force of an override's rule (false: unknown, and the
	// override's own max_limit holds); nil: not checked.
	MaxLimit func(rule string) (resource.Quantity, bool)
	Now      func() time.Time
	Logger   *zap.Logger
}

// Mutator serves POST /mutate/pods.
type Mutator struct{ o Options }

// New returns a Mutator.
func New(o Options) *Mutator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Protected == nil {
		o.Protected = func(string) bool { return false }
	}
	return &Mutator{o: o}
}

// maxBody bounds an AdmissionReview (the API server's own request limit is 3 MiB).
const maxBody = 4 << 20

// Annotations and labels read on a pod.
const (
	annotationIgnore = "podmedic.io/ignore"
	annotationDagID  = "dag_id"
	annotationTaskID = "task_id"
)

// ServeHTTP implements http.Handler.
func (m *Mutator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, fmt.Sprintf("content type %q: the API server sends application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "cannot read the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "AdmissionReview over 4 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	review, err := DecodeReview(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := m.Admit(review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&out)
}

// DecodeReview decodes an admission.k8s.io/v1 AdmissionReview with a request, or says
// precisely what is wrong with it.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("not an AdmissionReview: %v", err)
	}
	switch {
	case review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview":
		return nil, fmt.Errorf("not an admission.k8s.io/v1 AdmissionReview (apiVersion %q, kind %q); the webhook configuration must list admissionReviewVersions [v1]",
			review.APIVersion, review.Kind)
	case review.Request == nil:
		return nil, errors.New("AdmissionReview without a request")
	case review.Request.UID == "":
		return nil, errors.New("AdmissionReview request without a uid")
	}
	return &review, nil
}

// podResource is what /mutate/pods admits.
var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Admit answers one admission request: allowed always; with a JSON patch when the pod is a
// new Airflow worker of a task with an override.
func (m *Mutator) Admit(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.SubResource != "" || req.Operation != admissionv1.Create {
		return resp
	}
	switch req.Resource {
	case podResource:
	case sparkResource:
		return m.admitSparkApp(req, resp)
	default:
		return resp
	}
	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		// Not for podmedic to judge: the API server validates pods.
		m.o.Logger.Warn("webhook: pod does not decode; admitted unchanged", zap.String("uid", string(req.UID)), zap.Error(err))
		return resp
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	patch, applied, why := m.mutate(ns, pod)
	log := m.o.Logger.With(zap.String("namespace", ns), zap.String("pod", podName(pod, req)))
	if patch == nil {
		switch {
		case strings.HasPrefix(why, "refused:"):
			// An override that would make the API server refuse the pod is not applied:
			// the task starts with what it asks for, and the audit log says why.
			reason := strings.TrimSpace(strings.TrimPrefix(why, "refused:"))
			resp.AuditAnnotations = map[string]string{"memory-override-skipped": reason}
			log.Warn("webhook: memory override not applied", zap.String("why", reason))
		case why != "":
			log.Debug("webhook: pod admitted unchanged", zap.String("why", why))
		}
		return resp
	}
	return withPatch(resp, patch, applied, req, log)
}

// sortedPatch is the JSON patch from orig to next. CreatePatch walks maps in no particular
// order: the operations are sorted by path, so the same object always gets the same patch (a
// dry run and the real admission, every replica).
func sortedPatch(orig, next []byte) ([]jsonpatch.Operation, error) {
	ops, err := jsonpatch.CreatePatch(orig, next)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ops, func(a, b jsonpatch.Operation) int { return strings.Compare(a.Path, b.Path) })
	return ops, nil
}

// withPatch answers with ops as a JSON patch and the overrides applied in the audit
// annotations (unchanged, when the patch does not encode).
func withPatch(resp *admissionv1.AdmissionResponse, ops []jsonpatch.Operation, applied []string, req *admissionv1.AdmissionRequest,
	log *zap.Logger) *admissionv1.AdmissionResponse {
	b, err := json.Marshal(ops)
	if err != nil {
		log.Error("webhook: patch does not encode; admitted unchanged", zap.Error(err))
		return resp
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = b, &pt
	resp.AuditAnnotations = map[string]string{"memory-override": strings.Join(applied, ",")}
	log.Info("webhook: memory raised by override", zap.Strings("overrides", applied), zap.Bool("dry_run", req.DryRun != nil && *req.DryRun))
	return resp
}

// admittedPod is the part of a pod the webhook reads and changes: its metadata and its
// containers' names and resources. The rest (env, volumes, affinity: most of a worker pod's
// bytes) is skipped, not decoded: an admission then takes a fraction of the CPU, and the
// patch — computed between this part as it came and as raised — has the same paths as
// against the whole pod (containers keep their index).
type admittedPod struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Containers []struct {
			Name      string                      `json:"name"`
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"containers"`
	} `json:"spec"`
}

// decodePod decodes the part of a pod the webhook needs (admittedPod) into a Pod.
func decodePod(raw []byte) (*corev1.Pod, error) {
	var a admittedPod
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{ObjectMeta: a.Metadata}
	pod.Spec.Containers = make([]corev1.Container, len(a.Spec.Containers))
	for i, c := range a.Spec.Containers {
		pod.Spec.Containers[i] = corev1.Container{Name: c.Name, Resources: c.Resources}
	}
	return pod, nil
}

func podName(p *corev1.Pod, req *admissionv1.AdmissionRequest) string {
	switch {
	case p.Name != "":
		return p.Name
	case req.Name != "":
		return req.Name
	}
	return p.GenerateName + "…"
}

// mutate returns the JSON patch that raises the pod's memory by its task's overrides and the
// ids applied, or nil and why not.
func (m *Mutator) mutate(ns string, pod *corev1.Pod) ([]jsonpatch.Operation, []string, string) {
	a := pod.Annotations
	dag, task := a[annotationDagID], a[annotationTaskID]
	switch {
	case dag == "" || task == "":
		return nil, nil, "" // not an Airflow worker pod (or one without its identity)
	case strings.EqualFold(a[annotationIgnore], "true"):
		return nil, nil, annotationIgnore
	case m.o.Protected(ns):
		return nil, nil, "protected namespace"
	}
	ovs := m.o.Overrides.Find(m.o.Cluster, ns, dag, task, m.o.Now())
	if len(ovs) == 0 {
		return nil, nil, "no override"
	}
	orig, err := json.Marshal(pod)
	if err != nil {
		return nil, nil, err.Error()
	}
	mod := pod.DeepCopy()
	var containerMax, podMax resource.Quantity
	if m.o.Bounds != nil {
		containerMax, podMax = m.o.Bounds.MaxMemory(ns)
	}
	var applied []string
	for _, o := range ovs {
		bound := containerMax
		if m.o.MaxLimit != nil && o.Rule != "" {
			if q, ok := m.o.MaxLimit(o.Rule); ok && (bound.IsZero() || q.Cmp(bound) < 0) {
				bound = q
			}
		}
		if raiseContainer(mod, &o, bound) {
			applied = append(applied, o.ID)
		}
	}
	if len(applied) == 0 {
		return nil, nil, "the pod already asks for as much"
	}
	if why := m.refusedByBounds(ns, mod, podMax); why != "" {
		return nil, nil, "refused: " + why
	}
	if mod.Annotations == nil {
		mod.Annotations = map[string]string{}
	}
	mod.Annotations[overrides.AnnotationOverride] = strings.Join(applied, ",")
	next, err := json.Marshal(mod)
	if err != nil {
		return nil, nil, err.Error()
	}
	ops, err := sortedPatch(orig, next)
	if err != nil {
		return nil, nil, err.Error()
	}
	return ops, applied, ""
}

// refusedByBounds says why the API server would refuse the raised pod: a LimitRange's pod
// maximum, or a ResourceQuota without room for its memory ("" when it would not).
func (m *Mutator) refusedByBounds(ns string, pod *corev1.Pod, podMax resource.Quantity) string {
	if m.o.Bounds == nil {
		return ""
	}
	var limits, requests resource.Quantity
	for _, c := range pod.Spec.Containers {
		if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			limits.Add(l)
		}
		if r, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			requests.Add(r)
		} else if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			requests.Add(l) // a request defaults to the limit
		}
	}
	if !podMax.IsZero() && limits.Cmp(podMax) > 0 {
		return fmt.Sprintf("the raised pod's memory limits (%s) exceed the namespace's LimitRange pod maximum (%s)", limits.String(), podMax.String())
	}
	lLeft, rLeft, limited, requested := m.o.Bounds.QuotaLeft(ns)
	if limited && limits.Cmp(lLeft) > 0 {
		return fmt.Sprintf("a ResourceQuota has %s of limits.memory left; the raised pod needs %s", lLeft.String(), limits.String())
	}
	if requested && requests.Cmp(rLeft) > 0 {
		return fmt.Sprintf("a ResourceQuota has %s of requests.memory left; the raised pod needs %s", rLeft.String(), requests.String())
	}
	return ""
}

// raiseContainer raises the memory limit and request of o's container to o's values, capped
// at o's max_limit and at bound (the namespace's LimitRange container maximum or the rule's
// max_limit in force, the lower; zero: none) and never lowered; a request is never left above
// the limit. It reports whether anything changed.
func raiseContainer(pod *corev1.Pod, o *overrides.Override, bound resource.Quantity) bool {
	limit, request, maxLimit, err := o.Quantities()
	if err != nil {
		return false
	}
	if !maxLimit.IsZero() && limit.Cmp(maxLimit) > 0 {
		limit = maxLimit
	}
	if !bound.IsZero() && limit.Cmp(bound) > 0 {
		limit = bound
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name != o.Task.Container {
			continue
		}
		changed := false
		if cur, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || cur.Cmp(limit) < 0 {
			if c.Resources.Limits == nil {
				c.Resources.Limits = corev1.ResourceList{}
			}
			c.Resources.Limits[corev1.ResourceMemory] = limit
			changed = true
		}
		effective := c.Resources.Limits[corev1.ResourceMemory]
		if !request.IsZero() {
			if request.Cmp(effective) > 0 {
				request = effective
			}
			if cur, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok || cur.Cmp(request) < 0 {
				if c.Resources.Requests == nil {
					c.Resources.Requests = corev1.ResourceList{}
				}
				c.Resources.Requests[corev1.ResourceMemory] = request
				changed = true
			}
		}
		return changed
	}
	return false
}
