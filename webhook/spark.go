package webhook

import (
	"encoding/json"
	"maps"
	"strings"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/overrides"
	"github.com/podmedic/podmedic/spark"
)

// sparkResource is what /mutate/sparkapplications admits.
var sparkResource = metav1.GroupVersionResource{Group: spark.ApplicationResource.Group, Version: spark.ApplicationResource.Version,
	Resource: spark.ApplicationResource.Resource}

// admitSparkApp answers the creation of a SparkApplication: for one an Airflow task creates
// (SparkKubernetesOperator's task context labels in spec.driver.labels) whose task has
// overrides of its Spark roles, a JSON patch that sets the roles' memory and memoryOverhead
// (never lowering what the application asks for) and annotates it. Anything else is allowed
// unchanged.
func (m *Mutator) admitSparkApp(req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) *admissionv1.AdmissionResponse {
	app, err := spark.Decode(req.Object.Raw)
	if err != nil {
		m.o.Logger.Warn("webhook: SparkApplication does not decode; admitted unchanged", zap.String("uid", string(req.UID)), zap.Error(err))
		return resp
	}
	ns := req.Namespace
	if ns == "" {
		ns = app.Namespace
	}
	l := app.AirflowLabels()
	switch {
	case l == nil:
		return resp
	case strings.EqualFold(app.Annotations[annotationIgnore], "true"), m.o.Protected(ns):
		return resp
	}
	var roles []overrides.Override
	for _, o := range m.o.Overrides.Find(m.o.Cluster, ns, l["dag_id"], l["task_id"], m.o.Now()) {
		if o.Task.Role != "" {
			roles = append(roles, o)
		}
	}
	if len(roles) == 0 {
		return resp
	}
	orig, err := json.Marshal(app)
	if err != nil {
		return resp
	}
	mod := *app // the roles' settings are replaced, never written through (raiseRole)
	mod.Annotations = maps.Clone(app.Annotations)
	if mod.Annotations == nil {
		mod.Annotations = map[string]string{}
	}
	// A role's pods are created by the operator from these settings: a raise past the
	// namespace's LimitRange maximum (container or pod) would make the operator's pod creation
	// fail, so it is capped there, and at the rule's max_limit in force.
	var nsMax resource.Quantity
	if m.o.Bounds != nil {
		var podMax resource.Quantity
		if nsMax, podMax = m.o.Bounds.MaxMemory(ns); !podMax.IsZero() {
			nsMax = smaller(nsMax, podMax)
		}
	}
	var applied []string
	for _, o := range roles {
		bound := nsMax
		if m.o.MaxLimit != nil && o.Rule != "" {
			if q, ok := m.o.MaxLimit(o.Rule); ok && !q.IsZero() {
				bound = smaller(bound, q)
			}
		}
		if raiseRole(&mod, o, bound.Value()) {
			applied = append(applied, o.ID)
		}
	}
	log := m.o.Logger.With(zap.String("namespace", ns), zap.String("sparkapplication", app.Name))
	if len(applied) == 0 {
		log.Debug("webhook: SparkApplication admitted unchanged: it asks for as much already")
		return resp
	}
	mod.Annotations[overrides.AnnotationOverride] = strings.Join(applied, ",")
	next, err := json.Marshal(&mod)
	if err != nil {
		return resp
	}
	ops, err := sortedPatch(orig, next)
	if err != nil {
		log.Error("webhook: patch of a SparkApplication not made; admitted unchanged", zap.Error(err))
		return resp
	}
	return withPatch(resp, ops, applied, req, log)
}

// raiseRole sets the memory and memoryOverhead of o's Spark role to o's where they are more
// than the application's (its overhead as Spark computes it when unset), never lowering
// either, and reports whether anything changed. bound (bytes; 0: none) caps the pods' limit,
// memory + memoryOverhead: what the override raises is shortened to fit, in whole MiB.
func raiseRole(app *spark.Application, o overrides.Override, bound int64) bool {
	ps, ok := app.Role(o.Task.Role)
	if !ok {
		return false
	}
	cur, err := app.MemoryOf(o.Task.Role)
	if err != nil {
		return false
	}
	mem, err1 := spark.ParseMemory(o.Memory)
	over, err2 := spark.ParseMemory(o.MemoryOverhead)
	if err1 != nil || err2 != nil {
		return false
	}
	mem, over = max(mem, cur.Memory), max(over, cur.Overhead)
	if excess := mem + over - bound; bound > 0 && excess > 0 {
		if bound <= cur.Limit() {
			return false // at the bound already: nothing to raise within it
		}
		// Shorten the overhead's raise first, then the heap's, down to whole MiB.
		cut := min(excess, over-cur.Overhead)
		over -= cut
		mem -= excess - cut
		over, mem = max(cur.Overhead, over/mib*mib), max(cur.Memory, mem/mib*mib)
	}
	changed := false
	if mem > cur.Memory {
		v := spark.FormatMemory(mem)
		ps.Memory, changed = &v, true
	}
	// A raised heap under Spark's default overhead would grow the overhead with it, past the
	// limit approved and checked against the bound: the overhead is written out then.
	if over > cur.Overhead || (changed && cur.DefaultOverhead) {
		v := spark.FormatMemory(over)
		ps.MemoryOverhead, changed = &v, true
	}
	return changed
}

const mib = int64(1) << 20
