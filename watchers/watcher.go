package watchers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/podmedic/podmedic/bus"
)

// Publisher receives observations (the bus in production).
type Publisher interface {
	PublishObservation(ctx context.Context, o *bus.Observation) error
}

// Options configure a Watcher.
type Options struct {
	Client kubernetes.Interface
	// Cluster names the cluster in observations.
	Cluster string
	// Namespaces to watch; empty watches all namespaces.
	Namespaces []string
	// Exclude namespaces (applied to events from a cluster-wide watch).
	Exclude []string
	// Resync re-publishes every pod and PVC this often so time-based detectors (Init stuck for
	// 15 minutes) are re-evaluated without a change. Default 1m; 0 uses the default.
	Resync time.Duration
	// Workers publishing from the queue. Default 2.
	Workers   int
	Publisher Publisher
	Logger    *zap.Logger
	Metrics   *Metrics
	// Now is the clock stamped on observations; default time.Now.
	Now func() time.Time
}

// Watcher runs the informers and publishes their changes.
type Watcher struct {
	o       Options
	exclude map[string]bool
	scopes  []*scope // one per watched namespace (or one cluster-wide)
	queue   workqueue.TypedRateLimitingInterface[item]
	synced  atomic.Bool
	busy    atomic.Int64 // items being published

	mu      sync.Mutex
	pending map[item]pendingState // why an item is queued, and a deleted object's last state
}

type scope struct {
	namespace string // "" for all
	factory   informers.SharedInformerFactory
	pods      cache.SharedIndexInformer
	pvcs      cache.SharedIndexInformer
	events    cache.SharedIndexInformer
	podLister listersv1.PodLister
	pvcLister listersv1.PersistentVolumeClaimLister
}

// item is a queue key: coalescing by key means a storm of updates to one pod publishes its
// latest state once.
type item struct {
	kind, namespace, name string
}

type pendingState struct {
	typ  bus.ObservationType
	last metav1.Object // the final state of a deleted object
}

// priority orders why an item is queued: a delete beats an add beats an update beats a resync.
func priority(t bus.ObservationType) int {
	switch t {
	case bus.Deleted:
		return 3
	case bus.Added:
		return 2
	case bus.Updated:
		return 1
	}
	return 0
}

// New builds a Watcher. Informers are created here (with their transform and indexes) and
// started by Run.
func New(o Options) (*Watcher, error) {
	if o.Client == nil || o.Publisher == nil {
		return nil, errors.New("watchers: Client and Publisher are required")
	}
	if o.Resync <= 0 {
		o.Resync = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cluster == "" {
		o.Cluster = "default"
	}
	w := &Watcher{
		o:       o,
		exclude: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[item](),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: "podmedic-watchers"}),
		pending: map[item]pendingState{},
	}
	for _, ns := range o.Exclude {
		w.exclude[ns] = true
	}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		s, err := w.newScope(ns)
		if err != nil {
			return nil, err
		}
		w.scopes = append(w.scopes, s)
	}
	return w, nil
}

// Index names on the event informer.
const (
	indexInvolvedUID = "involvedUID"
	indexInvolvedObj = "involvedObject"
)

func (w *Watcher) newScope(ns string) (*scope, error) {
	f := informers.NewSharedInformerFactoryWithOptions(w.o.Client, w.o.Resync,
		informers.WithNamespace(ns), informers.WithTransform(Transform))
	s := &scope{namespace: ns, factory: f}
	pods := f.Core().V1().Pods()
	pvcs := f.Core().V1().PersistentVolumeClaims()
	s.events = f.Core().V1().Events().Informer()
	s.pods, s.pvcs = pods.Informer(), pvcs.Informer()
	s.podLister, s.pvcLister = pods.Lister(), pvcs.Lister()
	if err := s.events.AddIndexers(cache.Indexers{
		indexInvolvedUID: func(obj any) ([]string, error) {
			if e, ok := obj.(*corev1.Event); ok && e.InvolvedObject.UID != "" {
				return []string{string(e.InvolvedObject.UID)}, nil
			}
			return nil, nil
		},
		indexInvolvedObj: func(obj any) ([]string, error) {
			if e, ok := obj.(*corev1.Event); ok {
				io := e.InvolvedObject
				return []string{io.Kind + "/" + io.Namespace + "/" + io.Name}, nil
			}
			return nil, nil
		},
	}); err != nil {
		return nil, fmt.Errorf("watchers: event indexers: %w", err)
	}
	for kind, inf := range map[string]cache.SharedIndexInformer{bus.KindPod: s.pods, bus.KindPVC: s.pvcs, bus.KindEvent: s.events} {
		if _, err := inf.AddEventHandler(w.handler(kind)); err != nil {
			return nil, fmt.Errorf("watchers: %s handler: %w", kind, err)
		}
	}
	return s, nil
}

func (w *Watcher) handler(kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			t := bus.Added
			if initial {
				t = bus.Resync // the initial list: not necessarily a change
			}
			w.enqueue(kind, obj, t)
		},
		UpdateFunc: func(oldObj, newObj any) {
			t := bus.Updated
			if o, ok := oldObj.(metav1.Object); ok {
				if n, ok := newObj.(metav1.Object); ok && n.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
					t = bus.Resync
				}
			}
			w.enqueue(kind, newObj, t)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.enqueue(kind, obj, bus.Deleted)
		},
	}
}

func (w *Watcher) enqueue(kind string, obj any, t bus.ObservationType) {
	m, ok := obj.(metav1.Object)
	if !ok {
		w.o.Logger.Warn("ignoring object of unexpected type", zap.String("kind", kind), zap.String("type", fmt.Sprintf("%T", obj)))
		return
	}
	if w.exclude[m.GetNamespace()] {
		return
	}
	if kind == bus.KindEvent {
		if t == bus.Resync {
			return // events are forwarded once; a resync of an unchanged event says nothing new
		}
		// Only events about pods and claims matter; the rest are not published.
		if e, ok := obj.(*corev1.Event); ok && e.InvolvedObject.Kind != bus.KindPod && e.InvolvedObject.Kind != bus.KindPVC {
			return
		}
	}
	it := item{kind: kind, namespace: m.GetNamespace(), name: m.GetName()}
	w.mu.Lock()
	p := w.pending[it]
	if priority(t) >= priority(p.typ) || p.typ == "" {
		p.typ = t
	}
	if t == bus.Deleted {
		p.last = m
	} else if p.typ == bus.Deleted {
		// Re-created with the same name after a delete: publish the new object.
		p.typ, p.last = bus.Added, nil
	}
	w.pending[it] = p
	w.mu.Unlock()
	w.queue.Add(it)
}

// Run starts the informers, waits for their caches to sync (an error if they cannot), then
// publishes until ctx is done. It returns after the workers have stopped.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.queue.ShutDown()
	var synced []cache.InformerSynced
	for _, s := range w.scopes {
		s.factory.Start(ctx.Done())
		synced = append(synced, s.pods.HasSynced, s.pvcs.HasSynced, s.events.HasSynced)
	}
	defer func() {
		for _, s := range w.scopes {
			s.factory.Shutdown()
		}
	}()
	w.o.Logger.Info("waiting for informer caches to sync")
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("watchers: informer caches did not sync")
	}
	w.synced.Store(true)
	w.o.Logger.Info("informer caches synced", zap.Int("pods", w.count(bus.KindPod)), zap.Int("pvcs", w.count(bus.KindPVC)),
		zap.Int("events", w.count(bus.KindEvent)))
	var wg sync.WaitGroup
	for i := 0; i < w.o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, w.work, time.Second)
		}()
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// Idle reports whether nothing is queued or being published.
func (w *Watcher) Idle() bool { return w.queue.Len() == 0 && w.busy.Load() == 0 }

// Synced reports whether the informer caches have synced.
func (w *Watcher) Synced() bool { return w.synced.Load() }

func (w *Watcher) count(kind string) int {
	n := 0
	for _, s := range w.scopes {
		switch kind {
		case bus.KindPod:
			n += len(s.pods.GetStore().ListKeys())
		case bus.KindPVC:
			n += len(s.pvcs.GetStore().ListKeys())
		case bus.KindEvent:
			n += len(s.events.GetStore().ListKeys())
		}
	}
	return n
}

func (w *Watcher) work(ctx context.Context) {
	for {
		it, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		w.busy.Add(1)
		err := w.publish(ctx, it)
		w.busy.Add(-1)
		switch {
		case err == nil:
			w.queue.Forget(it)
		case ctx.Err() != nil:
			// Shutting down: the informers will list again on the next start.
		case errors.Is(err, bus.ErrMalformed):
			// Retrying cannot fix it (an object without a UID, say): drop it, loudly.
			w.o.Logger.Error("dropping an observation that cannot be published", zap.String("kind", it.kind),
				zap.String("namespace", it.namespace), zap.String("name", it.name), zap.Error(err))
			w.o.Metrics.publishError()
			w.queue.Forget(it)
		default:
			w.o.Logger.Warn("publish failed; will retry", zap.String("kind", it.kind),
				zap.String("namespace", it.namespace), zap.String("name", it.name), zap.Error(err))
			w.o.Metrics.publishError()
			w.queue.AddRateLimited(it)
		}
		w.queue.Done(it)
	}
}

func (w *Watcher) publish(ctx context.Context, it item) error {
	w.mu.Lock()
	p, ok := w.pending[it]
	delete(w.pending, it)
	w.mu.Unlock()
	if !ok {
		p.typ = bus.Updated // a retry: the pending entry was consumed by the failed attempt
	}
	var obj metav1.Object
	if p.typ != bus.Deleted {
		obj = w.get(it)
	}
	if obj == nil {
		if p.last == nil {
			return nil // deleted and already published, or never seen
		}
		obj, p.typ = p.last, bus.Deleted
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", it.kind, it.namespace, it.name, err)
	}
	o := &bus.Observation{
		Version: bus.EnvelopeVersion, Cluster: w.o.Cluster, Type: p.typ, Kind: it.kind,
		Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID()),
		ResourceVersion: obj.GetResourceVersion(), ObservedAt: w.o.Now().UTC(), Object: raw,
	}
	if e, ok := obj.(*corev1.Event); ok {
		o.Reason = e.Reason
	}
	if p.typ == bus.Resync {
		o.Epoch = o.ObservedAt.UnixNano() / int64(w.o.Resync)
	}
	if err := w.o.Publisher.PublishObservation(ctx, o); err != nil {
		if p.typ == bus.Deleted {
			w.mu.Lock()
			if _, again := w.pending[it]; !again {
				w.pending[it] = p // keep the final state for the retry
			}
			w.mu.Unlock()
		}
		return err
	}
	w.o.Metrics.published(it.kind, p.typ)
	return nil
}

func (w *Watcher) get(it item) metav1.Object {
	s := w.scopeFor(it.namespace)
	if s == nil {
		return nil
	}
	var (
		obj any
		ok  bool
	)
	switch it.kind {
	case bus.KindPod:
		obj, ok, _ = s.pods.GetStore().GetByKey(it.namespace + "/" + it.name)
	case bus.KindPVC:
		obj, ok, _ = s.pvcs.GetStore().GetByKey(it.namespace + "/" + it.name)
	case bus.KindEvent:
		obj, ok, _ = s.events.GetStore().GetByKey(it.namespace + "/" + it.name)
	}
	if !ok {
		return nil
	}
	m, _ := obj.(metav1.Object)
	return m
}

func (w *Watcher) scopeFor(namespace string) *scope {
	for _, s := range w.scopes {
		if s.namespace == metav1.NamespaceAll || s.namespace == namespace {
			return s
		}
	}
	return nil
}

// Pod returns the cached (trimmed) pod, or nil.
func (w *Watcher) Pod(namespace, name string) *corev1.Pod {
	if s := w.scopeFor(namespace); s != nil {
		if p, err := s.podLister.Pods(namespace).Get(name); err == nil {
			return p
		}
	}
	return nil
}

// PVC returns the cached (trimmed) claim, or nil.
func (w *Watcher) PVC(namespace, name string) *corev1.PersistentVolumeClaim {
	if s := w.scopeFor(namespace); s != nil {
		if c, err := s.pvcLister.PersistentVolumeClaims(namespace).Get(name); err == nil {
			return c
		}
	}
	return nil
}

// EventsFor returns the cached events about an object, oldest first: by UID when given and
// found, else by kind/namespace/name.
func (w *Watcher) EventsFor(kind, namespace, name, uid string) []*corev1.Event {
	s := w.scopeFor(namespace)
	if s == nil {
		return nil
	}
	var objs []any
	if uid != "" {
		objs, _ = s.events.GetIndexer().ByIndex(indexInvolvedUID, uid)
	}
	if len(objs) == 0 {
		objs, _ = s.events.GetIndexer().ByIndex(indexInvolvedObj, kind+"/"+namespace+"/"+name)
	}
	out := make([]*corev1.Event, 0, len(objs))
	for _, o := range objs {
		if e, ok := o.(*corev1.Event); ok {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	return out
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
