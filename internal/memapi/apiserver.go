package memapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
)

// resource is a served API resource. All of them are namespaced.
type apiResource struct {
	group, version, name, kind string
	// status: the resource has a spec and a status subresource. Create clears the status, update
	// keeps it, update of the status subresource changes only it; generation follows the spec.
	status bool
	// fields returns the field labels of an object besides metadata.name and metadata.namespace
	// (the apiserver's ToSelectableFields).
	fields func(runtime.Object) fields.Set
	// selectable are the field labels a field selector may use.
	selectable map[string]bool
	// custom: a custom resource (a CRD's), handled as unstructured JSON.
	custom bool
}

func (r *apiResource) apiVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

func (r *apiResource) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.group, Resource: r.name}
}

// new returns an empty object of the resource's type.
func (r *apiResource) new() (runtime.Object, error) {
	if r.custom {
		return &unstructured.Unstructured{Object: map[string]any{}}, nil
	}
	return scheme.Scheme.New(schema.GroupVersionKind{Group: r.group, Version: r.version, Kind: r.kind})
}

// withKind returns the JSON of a stored object (stored without kind and apiVersion, as list
// items are served) with its kind and apiVersion, as single objects and watch events are served.
func (r *apiResource) withKind(raw []byte) []byte {
	head := `{"kind":"` + r.kind + `","apiVersion":"` + r.apiVersion() + `"`
	if len(raw) < 2 || raw[0] != '{' {
		return raw
	}
	if raw[1] != '}' {
		head += ","
	}
	return append([]byte(head), raw[1:]...)
}

// decode decodes a request body (or a patched object) as the resource's type.
func (r *apiResource) decode(body []byte) (runtime.Object, metav1.Object, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(body, &tm); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request is not a %s: %v", r.kind, err))
	}
	if (tm.Kind != "" && tm.Kind != r.kind) || (tm.APIVersion != "" && tm.APIVersion != r.apiVersion()) {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s in version %q",
			tm.Kind, tm.APIVersion, r.kind, r.apiVersion()))
	}
	obj, err := r.new()
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	if err := unmarshal(body, obj); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
			r.kind, r.apiVersion(), r.kind, err))
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	return obj, m, nil
}

var (
	pods = &apiResource{version: "v1", name: "pods", kind: "Pod", status: true, fields: podFields}
	// resources by group/version/name.
	resources = map[string]*apiResource{}
)

func init() {
	for _, r := range []*apiResource{
		pods,
		{version: "v1", name: "persistentvolumeclaims", kind: "PersistentVolumeClaim", status: true},
		{version: "v1", name: "events", kind: "Event", fields: eventFields},
		{group: "events.k8s.io", version: "v1", name: "events", kind: "Event"},
		{group: "apps", version: "v1", name: "deployments", kind: "Deployment", status: true},
		{group: "apps", version: "v1", name: "statefulsets", kind: "StatefulSet", status: true},
		{group: "apps", version: "v1", name: "daemonsets", kind: "DaemonSet", status: true},
		{group: "apps", version: "v1", name: "replicasets", kind: "ReplicaSet", status: true,
			fields: func(obj runtime.Object) fields.Set {
				return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
			}},
		{group: "batch", version: "v1", name: "jobs", kind: "Job", status: true},
		{group: "batch", version: "v1", name: "cronjobs", kind: "CronJob", status: true},
		{group: "coordination.k8s.io", version: "v1", name: "leases", kind: "Lease"},
		// The Spark operator's custom resources, as if its CRDs were installed.
		{group: "sparkoperator.k8s.io", version: "v1beta2", name: "sparkapplications", kind: "SparkApplication", status: true, custom: true},
		{group: "sparkoperator.k8s.io", version: "v1beta2", name: "scheduledsparkapplications", kind: "ScheduledSparkApplication", status: true, custom: true},
	} {
		obj, err := r.new()
		if err != nil {
			panic(fmt.Sprintf("memapi: %s: %v", r.kind, err)) // a mistake in the table above
		}
		r.selectable = map[string]bool{"metadata.name": true, "metadata.namespace": true}
		if r.fields != nil {
			for f := range r.fields(obj) {
				r.selectable[f] = true
			}
		}
		resources[r.apiVersion()+"/"+r.name] = r
	}
}

// podFields are the field labels of a pod, as the apiserver has them.
func podFields(obj runtime.Object) fields.Set {
	p := obj.(*corev1.Pod)
	ip := ""
	if len(p.Status.PodIPs) > 0 {
		ip = p.Status.PodIPs[0].IP
	} else {
		ip = p.Status.PodIP
	}
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             ip,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

// eventFields are the field labels of a core/v1 event, as the apiserver has them.
func eventFields(obj runtime.Object) fields.Set {
	e := obj.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

// object is a stored object.
type object struct {
	raw       []byte // JSON without kind and apiVersion; never modified
	namespace string
	name      string
	uid       types.UID
	rv        uint64
	labels    labels.Set
	fields    fields.Set
}

func (o *object) resourceVersion() string { return strconv.FormatUint(o.rv, 10) }

// change is one write, as watches see it.
type change struct {
	rv   uint64
	typ  watch.EventType // Added, Modified or Deleted
	res  *apiResource
	obj  *object // after the change; for Deleted, the last state with the deletion's resourceVersion
	prev *object // before the change; nil for Added
}

// Options configure a Server.
type Options struct {
	// Now stamps the creationTimestamp of objects created without one; default time.Now.
	Now func() time.Time
}

// Server is the in-memory API. It is an http.Handler; RoundTripper serves it to a client without
// a listener. Safe for concurrent use.
type Server struct {
	now func() time.Time
	// maxHistory bounds the watch history; bookmarkEvery is the period of bookmarks on watches
	// that allow them.
	maxHistory    int
	bookmarkEvery time.Duration

	mu        sync.Mutex
	rv        uint64                              // the last resourceVersion given
	objects   map[*apiResource]map[string]*object // by namespace/name
	history   []*change                           // the changes after compacted, oldest first
	compacted uint64                              // the newest change no longer in history
	changed   chan struct{}                       // closed and replaced on every change
	logs      map[string]map[string]string        // namespace/pod -> container -> log
}

// New returns an empty API server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{
		now: o.Now, maxHistory: 4096, bookmarkEvery: time.Minute,
		objects: map[*apiResource]map[string]*object{},
		changed: make(chan struct{}),
		logs:    map[string]map[string]string{},
	}
}

// SetLog sets the log of a container of pod namespace/name, served by the pods/log subresource
// until the pod is deleted. The pod need not exist yet.
func (s *Server) SetLog(namespace, pod, container, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := namespace + "/" + pod
	if s.logs[key] == nil {
		s.logs[key] = map[string]string{}
	}
	s.logs[key][container] = text
}

// target is what a request path names.
type target struct {
	res       *apiResource
	namespace string // "" across namespaces (list and watch only)
	name      string
	sub       string // subresource
}

func (t target) key() string { return t.namespace + "/" + t.name }

// notFoundPath is the apiserver's answer for a path it does not serve.
func notFoundPath() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound,
		Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource"}}
}

// parsePath parses /api/v1/... and /apis/GROUP/VERSION/...: RESOURCE (across namespaces), or
// namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]].
func parsePath(path string) (target, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv string
	switch {
	case len(parts) >= 2 && parts[0] == "api" && parts[1] == "v1":
		gv, parts = "v1", parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		gv, parts = parts[1]+"/"+parts[2], parts[3:]
	default:
		return target{}, notFoundPath()
	}
	var t target
	switch {
	case len(parts) == 1:
	case len(parts) >= 3 && len(parts) <= 5 && parts[0] == "namespaces" && parts[1] != "":
		t.namespace, parts = parts[1], parts[2:]
	default:
		return target{}, notFoundPath()
	}
	if t.res = resources[gv+"/"+parts[0]]; t.res == nil {
		return target{}, notFoundPath()
	}
	if len(parts) > 1 {
		t.name = parts[1]
	}
	if len(parts) > 2 {
		t.sub = parts[2]
	}
	if t.name == "" && len(parts) > 1 {
		return target{}, notFoundPath()
	}
	switch t.sub {
	case "":
	case "status":
		if !t.res.status {
			return target{}, notFoundPath()
		}
	case "log", "eviction":
		if t.res != pods {
			return target{}, notFoundPath()
		}
	default:
		return target{}, notFoundPath()
	}
	return t, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/version" {
		if r.Method != http.MethodGet {
			writeError(w, apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "version"}, r.Method))
			return
		}
		writeObject(w, http.StatusOK, versionInfo())
		return
	}
	if list := discovery(r.URL.Path); list != nil {
		if r.Method != http.MethodGet {
			writeError(w, apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "apiresources"}, r.Method))
			return
		}
		writeObject(w, http.StatusOK, list)
		return
	}
	t, err := parsePath(r.URL.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	var (
		code = http.StatusOK
		body []byte
	)
	switch {
	case t.name == "" && r.Method == http.MethodGet:
		var opts metav1.ListOptions
		if opts, err = listOptions(r); err != nil {
			break
		}
		if opts.Watch {
			s.watch(w, r, t, opts)
			return
		}
		body, err = s.list(t, opts)
	case t.name == "" && r.Method == http.MethodPost && t.namespace != "":
		code, body, err = s.create(t, r)
	case t.namespace == "":
		err = apierrors.NewMethodNotSupported(t.res.groupResource(), r.Method)
	case t.sub == "log" && r.Method == http.MethodGet:
		s.podLog(w, r, t)
		return
	case t.sub == "eviction" && r.Method == http.MethodPost:
		code, body, err = s.evict(t, r)
	case t.sub == "log" || t.sub == "eviction" || t.name == "":
		err = apierrors.NewMethodNotSupported(t.res.groupResource(), r.Method)
	case r.Method == http.MethodGet:
		body, err = s.get(t)
	case r.Method == http.MethodPut:
		body, err = s.update(t, r)
	case r.Method == http.MethodPatch:
		body, err = s.patch(t, r)
	case r.Method == http.MethodDelete && t.sub == "":
		body, err = s.delete(t, r)
	default:
		err = apierrors.NewMethodNotSupported(t.res.groupResource(), r.Method)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// discovery returns the resources served in group version /api/v1 or /apis/GROUP/VERSION (what
// discovery clients read to learn whether a CRD is installed), or nil for another path.
func discovery(path string) *metav1.APIResourceList {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv string
	switch {
	case len(parts) == 2 && parts[0] == "api" && parts[1] == "v1":
		gv = "v1"
	case len(parts) == 3 && parts[0] == "apis":
		gv = parts[1] + "/" + parts[2]
	default:
		return nil
	}
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
	for _, r := range resources {
		if r.apiVersion() != gv {
			continue
		}
		verbs := metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: r.name, Namespaced: true, Kind: r.kind, Verbs: verbs})
		if r.status {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: r.name + "/status", Namespaced: true, Kind: r.kind,
				Verbs: metav1.Verbs{"get", "patch", "update"}})
		}
	}
	if len(list.APIResources) == 0 {
		return nil // a group version not served: 404, as the apiserver answers
	}
	sort.Slice(list.APIResources, func(i, j int) bool { return list.APIResources[i].Name < list.APIResources[j].Name })
	return list
}

func versionInfo() version.Info {
	return version.Info{Major: "1", Minor: "36", GitVersion: "v1.36.0-memapi", GoVersion: goruntime.Version(),
		Compiler: goruntime.Compiler, Platform: goruntime.GOOS + "/" + goruntime.GOARCH}
}

func writeObject(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// status is the metav1.Status body of err.
func status(err error) metav1.Status {
	var st metav1.Status
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.Kind, st.APIVersion = "Status", "v1"
	return st
}

func writeError(w http.ResponseWriter, err error) {
	st := status(err)
	writeObject(w, int(st.Code), st)
}

func statusError(code int, reason metav1.StatusReason, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}}
}

// maxBody is the apiserver's limit on a request body.
const maxBody = 3 << 20

// readBody reads the request body; wantJSON requires a JSON content type (or none).
func readBody(r *http.Request, wantJSON bool) ([]byte, error) {
	if wantJSON {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
					fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json (got %q)", ct))
			}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, apierrors.NewBadRequest("reading the body: " + err.Error())
	}
	if len(body) > maxBody {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBody))
	}
	return body, nil
}

// jsonRequest is the dry-run flag and the JSON body of a request that writes an object.
func jsonRequest(r *http.Request) (dry bool, body []byte, err error) {
	if dry, err = dryRun(r); err != nil {
		return false, nil, err
	}
	if body, err = readBody(r, true); err != nil {
		return false, nil, err
	}
	return dry, body, nil
}

// dryRun tells whether the request asks for a dry run (dryRun=All).
func dryRun(r *http.Request) (bool, error) {
	v := r.URL.Query()["dryRun"]
	for _, d := range v {
		if d != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q (supported: All)", d))
		}
	}
	return len(v) > 0, nil
}

// validName checks a name or namespace as the apiserver's path segment check does.
func validName(kind schema.GroupKind, name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, "/%") {
		return apierrors.NewInvalid(kind, name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), name, `may not be '.' or '..' and may not contain '/' or '%'`)})
	}
	return nil
}

// place sets an object's namespace from the path or checks it, and checks its name against the
// path's (when the path has one).
func (t target) place(m metav1.Object) error {
	switch ns := m.GetNamespace(); {
	case ns == "":
		m.SetNamespace(t.namespace)
	case ns != t.namespace:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if t.name != "" && m.GetName() != t.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), t.name))
	}
	return nil
}

// newObject makes the stored form of obj, whose metadata is final.
func newObject(res *apiResource, obj runtime.Object) (*object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		delete(u.Object, "kind")
		delete(u.Object, "apiVersion")
	} else {
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	rv, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	f := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	if res.fields != nil {
		for k, v := range res.fields(obj) {
			f[k] = v
		}
	}
	return &object{raw: raw, namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUID(), rv: rv,
		labels: labels.Set(m.GetLabels()), fields: f}, nil
}

// decodeStored decodes a stored object.
func decodeStored(res *apiResource, o *object) (runtime.Object, metav1.Object, error) {
	obj, err := res.new()
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	if err := unmarshal(o.raw, obj); err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	return obj, m, nil
}

// commitLocked stores obj (a change of type typ to res; prev is the object before) with a new
// resourceVersion and tells the watches. A dry run stores nothing and keeps the resourceVersion.
// s.mu is held.
func (s *Server) commitLocked(res *apiResource, typ watch.EventType, obj runtime.Object, prev *object, dry bool) (*object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if dry {
		o, err := newObject(res, obj)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		return o, nil
	}
	rv := s.rv + 1
	m.SetResourceVersion(strconv.FormatUint(rv, 10))
	o, err := newObject(res, obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	s.rv = rv
	objs := s.objects[res]
	if objs == nil {
		objs = map[string]*object{}
		s.objects[res] = objs
	}
	key := o.namespace + "/" + o.name
	if typ == watch.Deleted {
		delete(objs, key)
	} else {
		objs[key] = o
	}
	s.history = append(s.history, &change{rv: rv, typ: typ, res: res, obj: o, prev: prev})
	if len(s.history) > s.maxHistory {
		keep := len(s.history) / 2
		s.compacted = s.history[len(s.history)-keep-1].rv
		s.history = slices.Clone(s.history[len(s.history)-keep:])
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return o, nil
}

func (s *Server) get(t target) ([]byte, error) {
	s.mu.Lock()
	o := s.objects[t.res][t.key()]
	s.mu.Unlock()
	if o == nil {
		return nil, apierrors.NewNotFound(t.res.groupResource(), t.name)
	}
	return t.res.withKind(o.raw), nil
}

func (s *Server) create(t target, r *http.Request) (int, []byte, error) {
	dry, body, err := jsonRequest(r)
	if err != nil {
		return 0, nil, err
	}
	obj, m, err := t.res.decode(body)
	if err != nil {
		return 0, nil, err
	}
	if err := t.place(m); err != nil {
		return 0, nil, err
	}
	gk := schema.GroupKind{Group: t.res.group, Kind: t.res.kind}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return 0, nil, apierrors.NewInvalid(gk, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	if err := validName(gk, m.GetName()+m.GetGenerateName()); err != nil {
		return 0, nil, err
	}
	if m.GetResourceVersion() != "" {
		return 0, nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if t.res.status {
		resetStatus(obj)
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)

	s.mu.Lock()
	defer s.mu.Unlock()
	objs := s.objects[t.res]
	if m.GetName() == "" {
		for {
			m.SetName(m.GetGenerateName() + rand.String(5))
			if objs[t.namespace+"/"+m.GetName()] == nil {
				break
			}
		}
	}
	if objs[t.namespace+"/"+m.GetName()] != nil {
		return 0, nil, apierrors.NewAlreadyExists(t.res.groupResource(), m.GetName())
	}
	if m.GetUID() == "" {
		m.SetUID(uuid.NewUUID())
	}
	if ts := m.GetCreationTimestamp(); ts.IsZero() {
		m.SetCreationTimestamp(metav1.NewTime(s.now()))
	}
	o, err := s.commitLocked(t.res, watch.Added, obj, nil, dry)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, t.res.withKind(o.raw), nil
}

// resetStatus sets the status of a new object as the apiserver does on create.
func resetStatus(obj runtime.Object) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		delete(o.Object, "status")
		return
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
		return
	case *corev1.PersistentVolumeClaim:
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
		return
	}
	st := reflect.ValueOf(obj).Elem().FieldByName("Status")
	st.Set(reflect.Zero(st.Type()))
}

// part returns an object's spec or status ("spec", "status"): a typed object's field, a custom
// resource's key (nil when absent).
func part(obj runtime.Object, name string) any {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.Object[name]
	}
	return reflect.ValueOf(obj).Elem().FieldByName(strings.ToUpper(name[:1]) + name[1:]).Interface()
}

// setPart sets an object's spec or status to v, as part returned it (of an object of the same
// resource).
func setPart(obj runtime.Object, name string, v any) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if v == nil {
			delete(u.Object, name)
		} else {
			u.Object[name] = v
		}
		return
	}
	reflect.ValueOf(obj).Elem().FieldByName(strings.ToUpper(name[:1]) + name[1:]).Set(reflect.ValueOf(v))
}

// unmarshal decodes JSON into obj: a custom resource's object as plain JSON with whole numbers
// as int64, as unstructured holds them (its own decoder wants a kind, which stored objects do
// not carry).
func unmarshal(raw []byte, obj runtime.Object) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return utiljson.Unmarshal(raw, &u.Object)
	}
	return json.Unmarshal(raw, obj)
}

// merge returns what an update of cur to obj stores: for the status subresource, cur with obj's
// status; else obj with cur's immutable metadata and, for resources with a status, cur's status
// (and the generation bumped when the spec changed).
func merge(t target, cur *object, obj runtime.Object) (runtime.Object, error) {
	old, oldMeta, err := decodeStored(t.res, cur)
	if err != nil {
		return nil, err
	}
	if t.sub == "status" {
		setPart(old, "status", part(obj, "status"))
		return old, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	m.SetUID(oldMeta.GetUID())
	m.SetCreationTimestamp(oldMeta.GetCreationTimestamp())
	m.SetDeletionTimestamp(oldMeta.GetDeletionTimestamp())
	m.SetGeneration(oldMeta.GetGeneration())
	if t.res.status {
		setPart(obj, "status", part(old, "status"))
		before, err1 := json.Marshal(part(old, "spec"))
		after, err2 := json.Marshal(part(obj, "spec"))
		if err1 != nil || err2 != nil || !bytes.Equal(before, after) {
			m.SetGeneration(oldMeta.GetGeneration() + 1)
		}
	}
	return obj, nil
}

func conflict(t target, err error) error {
	return apierrors.NewConflict(t.res.groupResource(), t.name, err)
}

// replaceLocked stores obj (an update or a patched object) over cur unless rv, when set, is
// stale.
func (s *Server) replaceLocked(t target, cur *object, obj runtime.Object, rv string, dry bool) ([]byte, error) {
	if rv != "" && rv != cur.resourceVersion() {
		return nil, conflict(t, errModified)
	}
	obj, err := merge(t, cur, obj)
	if err != nil {
		return nil, err
	}
	o, err := s.commitLocked(t.res, watch.Modified, obj, cur, dry)
	if err != nil {
		return nil, err
	}
	return t.res.withKind(o.raw), nil
}

// errModified is the apiserver's message for an update from a stale resourceVersion.
var errModified = fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")

func (s *Server) update(t target, r *http.Request) ([]byte, error) {
	dry, body, err := jsonRequest(r)
	if err != nil {
		return nil, err
	}
	obj, m, err := t.res.decode(body)
	if err != nil {
		return nil, err
	}
	if err := t.place(m); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.objects[t.res][t.key()]
	if cur == nil {
		return nil, apierrors.NewNotFound(t.res.groupResource(), t.name)
	}
	if uid := m.GetUID(); uid != "" && uid != cur.uid {
		return nil, conflict(t, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, cur.uid))
	}
	return s.replaceLocked(t, cur, obj, m.GetResourceVersion(), dry)
}

// Patch content types.
const (
	strategicMergePatch = "application/strategic-merge-patch+json"
	mergePatch          = "application/merge-patch+json"
	jsonPatch           = "application/json-patch+json"
)

func (s *Server) patch(t target, r *http.Request) ([]byte, error) {
	dry, err := dryRun(r)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != strategicMergePatch && ct != mergePatch && ct != jsonPatch {
		return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s (got %q)",
				jsonPatch, mergePatch, strategicMergePatch, r.Header.Get("Content-Type")))
	}
	body, err := readBody(r, false)
	if err != nil {
		return nil, err
	}
	var ops jsonpatch.Patch
	if ct == jsonPatch {
		if ops, err = jsonpatch.DecodePatch(body); err != nil {
			return nil, apierrors.NewBadRequest("decoding the JSON patch: " + err.Error())
		}
	} else if !json.Valid(body) {
		return nil, apierrors.NewBadRequest("the patch is not valid JSON")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.objects[t.res][t.key()]
	if cur == nil {
		return nil, apierrors.NewNotFound(t.res.groupResource(), t.name)
	}
	orig := t.res.withKind(cur.raw)
	var patched []byte
	switch ct {
	case strategicMergePatch:
		if t.res.custom { // as the apiserver: a custom resource has no patch strategy
			return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
				fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, application/apply-patch+yaml", jsonPatch, mergePatch))
		}
		var schemaObj runtime.Object
		if schemaObj, err = t.res.new(); err == nil {
			patched, err = strategicpatch.StrategicMergePatch(orig, body, schemaObj)
		}
	case mergePatch:
		patched, err = jsonpatch.MergePatch(orig, body)
	case jsonPatch:
		patched, err = ops.Apply(orig)
	}
	if err != nil {
		return nil, statusError(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "the patch cannot be applied: "+err.Error())
	}
	obj, m, err := t.res.decode(patched)
	if err != nil {
		return nil, err
	}
	if err := t.place(m); err != nil {
		return nil, err
	}
	if uid := m.GetUID(); uid != "" && uid != cur.uid {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: t.res.group, Kind: t.res.kind}, t.name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "uid"), uid, "field is immutable")})
	}
	return s.replaceLocked(t, cur, obj, m.GetResourceVersion(), dry)
}

func (s *Server) delete(t target, r *http.Request) ([]byte, error) {
	dry, body, err := jsonRequest(r)
	if err != nil {
		return nil, err
	}
	var opts metav1.DeleteOptions
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			return nil, apierrors.NewBadRequest("the body of the request is not DeleteOptions: " + err.Error())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.deleteLocked(t, opts.Preconditions, dry)
	if err != nil {
		return nil, err
	}
	return t.res.withKind(o.raw), nil
}

// deleteLocked deletes the target if the preconditions hold. s.mu is held.
func (s *Server) deleteLocked(t target, pre *metav1.Preconditions, dry bool) (*object, error) {
	cur := s.objects[t.res][t.key()]
	if cur == nil {
		return nil, apierrors.NewNotFound(t.res.groupResource(), t.name)
	}
	if pre != nil && pre.UID != nil && *pre.UID != cur.uid {
		return nil, conflict(t, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *pre.UID, cur.uid))
	}
	if pre != nil && pre.ResourceVersion != nil && *pre.ResourceVersion != cur.resourceVersion() {
		return nil, conflict(t, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v",
			*pre.ResourceVersion, cur.resourceVersion()))
	}
	obj, _, err := decodeStored(t.res, cur)
	if err != nil {
		return nil, err
	}
	o, err := s.commitLocked(t.res, watch.Deleted, obj, cur, dry)
	if err != nil {
		return nil, err
	}
	if t.res == pods && !dry {
		delete(s.logs, t.key())
	}
	return o, nil
}

// evict is the pods/eviction subresource: with no PodDisruptionBudgets, it deletes the pod.
func (s *Server) evict(t target, r *http.Request) (int, []byte, error) {
	dry, body, err := jsonRequest(r)
	if err != nil {
		return 0, nil, err
	}
	var ev policyv1.Eviction
	if err := json.Unmarshal(body, &ev); err != nil {
		return 0, nil, apierrors.NewBadRequest("the body of the request is not an Eviction: " + err.Error())
	}
	if ev.Kind != "" && ev.Kind != "Eviction" {
		return 0, nil, apierrors.NewBadRequest(fmt.Sprintf("%s cannot be handled as an Eviction", ev.Kind))
	}
	if ev.Name != t.name {
		return 0, nil, apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	if ev.Namespace != "" && ev.Namespace != t.namespace {
		return 0, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	var pre *metav1.Preconditions
	if ev.DeleteOptions != nil {
		pre = ev.DeleteOptions.Preconditions
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.deleteLocked(target{res: pods, namespace: t.namespace, name: t.name}, pre, dry); err != nil {
		return 0, nil, err
	}
	out, err := json.Marshal(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusSuccess, Code: http.StatusCreated})
	return http.StatusCreated, out, err
}

// podLog serves pods/log: the text SetLog registered for the container (empty when none), with
// tailLines and limitBytes applied.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, t target) {
	q := r.URL.Query()
	intParam := func(name string) (int, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false, apierrors.NewBadRequest(fmt.Sprintf("%s: %q is not a non-negative integer", name, v))
		}
		return n, true, nil
	}
	tail, hasTail, err := intParam("tailLines")
	if err != nil {
		writeError(w, err)
		return
	}
	limit, hasLimit, err := intParam("limitBytes")
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	cur := s.objects[pods][t.key()]
	logs := s.logs[t.key()]
	s.mu.Unlock()
	if cur == nil {
		writeError(w, apierrors.NewNotFound(pods.groupResource(), t.name))
		return
	}
	obj, _, err := decodeStored(pods, cur)
	if err != nil {
		writeError(w, err)
		return
	}
	spec := obj.(*corev1.Pod).Spec
	container := q.Get("container")
	var names []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	switch {
	case container == "" && len(spec.Containers) == 1:
		container = spec.Containers[0].Name
	case container == "":
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", t.name, names)))
		return
	case !slices.Contains(names, container):
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, t.name)))
		return
	}
	text := logs[container]
	if hasTail {
		lines := strings.SplitAfter(text, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		text = strings.Join(lines[max(0, len(lines)-tail):], "")
	}
	if hasLimit && limit < len(text) {
		text = text[:limit]
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, text)
}

// listOptions decodes the query of a list or watch.
func listOptions(r *http.Request) (metav1.ListOptions, error) {
	var opts metav1.ListOptions
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), corev1.SchemeGroupVersion, &opts); err != nil {
		return opts, apierrors.NewBadRequest(err.Error())
	}
	return opts, nil
}

// selector selects the objects of a list or watch.
type selector struct {
	res       *apiResource
	namespace string
	labels    labels.Selector
	fields    fields.Selector
}

func newSelector(t target, opts metav1.ListOptions) (selector, error) {
	sel := selector{res: t.res, namespace: t.namespace}
	var err error
	if sel.labels, err = labels.Parse(opts.LabelSelector); err != nil {
		return sel, apierrors.NewBadRequest(fmt.Sprintf("unable to parse labelSelector %q: %v", opts.LabelSelector, err))
	}
	if sel.fields, err = fields.ParseSelector(opts.FieldSelector); err != nil {
		return sel, apierrors.NewBadRequest(fmt.Sprintf("unable to parse fieldSelector %q: %v", opts.FieldSelector, err))
	}
	for _, req := range sel.fields.Requirements() {
		if !t.res.selectable[req.Field] {
			return sel, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return sel, nil
}

func (sel selector) matches(o *object) bool {
	return (sel.namespace == "" || o.namespace == sel.namespace) && sel.labels.Matches(o.labels) && sel.fields.Matches(o.fields)
}

func (s *Server) list(t target, opts metav1.ListOptions) ([]byte, error) {
	sel, err := newSelector(t, opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var items []*object
	for _, o := range s.objects[t.res] {
		if sel.matches(o) {
			items = append(items, o)
		}
	}
	rv := s.rv
	s.mu.Unlock()
	sortObjects(items)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"kind":"%sList","apiVersion":"%s","metadata":{"resourceVersion":"%d"},"items":[`, t.res.kind, t.res.apiVersion(), rv)
	for i, o := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(o.raw)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

func sortObjects(objs []*object) {
	sort.Slice(objs, func(i, j int) bool {
		if objs[i].namespace != objs[j].namespace {
			return objs[i].namespace < objs[j].namespace
		}
		return objs[i].name < objs[j].name
	})
}
