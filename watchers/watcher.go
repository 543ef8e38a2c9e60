package watchers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/spark"
)

// Publisher receives observations (the bus in production).
type Publisher interface {
	PublishObservation(ctx context.Context, o *bus.Observation) error
}

// BatchPublisher is a Publisher that also publishes many observations in one round trip,
// returning one error per observation (the bus does, in one message: a frame). Resync passes
// use it when available.
type BatchPublisher interface {
	Publisher
	PublishObservations(ctx context.Context, obs []*bus.Observation) []error
}

// Backlogger is a Publisher that tells how many published messages are not handled yet (the
// bus). Resync passes wait while the backlog is above maxBacklog observations (counting a
// message of a BatchPublisher as resyncBatch of them): a pass of 20,000 pods published at
// full speed would otherwise sit in the stream, in memory and ahead of the next real change.
type Backlogger interface {
	ObservationBacklog(ctx context.Context) (int, error)
}

const (
	// resyncBatch is how many observations a resync pass publishes at once.
	resyncBatch = 128
	// maxBacklog is the backlog above which a resync pass waits.
	maxBacklog = 512
)

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
	// Workers publishing from the queue (and resync passes). Default 4: a publish waits for
	// JetStream's acknowledgement, so a burst of changes is published this many at a time.
	Workers   int
	Publisher Publisher
	Logger    *zap.Logger
	Metrics   *Metrics
	// Now is the clock stamped on observations; default time.Now.
	Now func() time.Time
	// Dynamic watches SparkApplications once their CRD is installed (nil: never).
	Dynamic dynamic.Interface
	// DiscoveryInterval is how often to look for the SparkApplication CRD while it is not
	// installed. Default DefaultDiscoveryInterval.
	DiscoveryInterval time.Duration
}

// Watcher runs the informers and publishes their changes.
type Watcher struct {
	o       Options
	exclude map[string]bool
	scopes  []*scope // one per watched namespace (or one cluster-wide)
	queue   workqueue.TypedRateLimitingInterface[item]
	synced  atomic.Bool
	busy    atomic.Int64 // items being published

	spark sparkWatch

	mu      sync.Mutex
	pending map[item]pendingState // why an item is queued, and a deleted object's last state
	peak    int                   // the most items pending since pending was last made
}

type scope struct {
	namespace string // "" for all
	pods      cache.SharedIndexInformer
	pvcs      cache.SharedIndexInformer
	// Events about pods and about claims, each from a watch that the apiserver filters (see
	// podEventSelector).
	podEvents, pvcEvents cache.SharedIndexInformer
	pvcLister            listersv1.PersistentVolumeClaimLister
}

// object is what the watchers need of a cached object: a Kubernetes object or a podRecord.
type object interface {
	GetNamespace() string
	GetName() string
	GetUID() types.UID
	GetResourceVersion() string
}

// item is a queue key: coalescing by key means a storm of updates to one pod publishes its
// latest state once.
type item struct {
	kind, namespace, name string
}

type pendingState struct {
	typ  bus.ObservationType
	last object // the final state of a deleted object
}

// shrinkPending is the burst size after which the pending map is made anew once empty.
const shrinkPending = 1024

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
		o.Workers = 4
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
	if o.DiscoveryInterval <= 0 {
		o.DiscoveryInterval = DefaultDiscoveryInterval
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

// Index names on the event informers.
const (
	indexInvolvedUID = "involvedUID"
	indexInvolvedObj = "involvedObject"
)

// noisyEventReasons are the reasons of the events every pod start produces, which no detector
// reads: the pod event watch leaves them out (they are most of a busy cluster's events), so
// they are neither cached nor published.
var noisyEventReasons = []string{"Scheduled", "Pulling", "Pulled", "Created", "Started", "AddedInterface"}

// podEventSelector selects the events about pods that detectors may read.
func podEventSelector() fields.Selector {
	sel := []fields.Selector{fields.OneTermEqualSelector("involvedObject.kind", bus.KindPod)}
	for _, r := range noisyEventReasons {
		sel = append(sel, fields.OneTermNotEqualSelector("reason", r))
	}
	return fields.AndSelectors(sel...)
}

func (w *Watcher) newScope(ns string) (*scope, error) {
	// No informer resync: the resync pass (resync) re-publishes from the caches without
	// going through the change queue. The informers are made one by one, not through
	// client-go's SharedInformerFactory, which links every API group's informers and
	// listers into the binary (megabytes of resident code) for the two types watched here.
	s := &scope{namespace: ns}
	// Pods are looked up by key only: no namespace index (a set entry per pod).
	s.pods = coreinformers.NewFilteredPodInformer(w.o.Client, ns, 0, cache.Indexers{}, nil)
	s.pvcs = coreinformers.NewFilteredPersistentVolumeClaimInformer(w.o.Client, ns, 0, cache.Indexers{}, nil)
	for _, inf := range []cache.SharedIndexInformer{s.pods, s.pvcs} {
		if err := inf.SetTransform(Transform); err != nil {
			return nil, fmt.Errorf("watchers: transform: %w", err)
		}
	}
	s.pvcLister = listersv1.NewPersistentVolumeClaimLister(s.pvcs.GetIndexer())
	eventIndexers := cache.Indexers{
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
	}
	// Events are forwarded once and never resynced.
	eventInformer := func(sel fields.Selector) (cache.SharedIndexInformer, error) {
		inf := coreinformers.NewFilteredEventInformer(w.o.Client, ns, 0, eventIndexers,
			func(lo *metav1.ListOptions) { lo.FieldSelector = sel.String() })
		return inf, inf.SetTransform(Transform)
	}
	var err error
	if s.podEvents, err = eventInformer(podEventSelector()); err != nil {
		return nil, fmt.Errorf("watchers: pod events: %w", err)
	}
	if s.pvcEvents, err = eventInformer(fields.OneTermEqualSelector("involvedObject.kind", bus.KindPVC)); err != nil {
		return nil, fmt.Errorf("watchers: claim events: %w", err)
	}
	for _, h := range []struct {
		inf     cache.SharedIndexInformer
		kind    string
		involve string // events: the kind of object they are about
	}{{s.pods, bus.KindPod, ""}, {s.pvcs, bus.KindPVC, ""}, {s.podEvents, bus.KindEvent, bus.KindPod}, {s.pvcEvents, bus.KindEvent, bus.KindPVC}} {
		if _, err := h.inf.AddEventHandler(w.handler(h.kind, h.involve)); err != nil {
			return nil, fmt.Errorf("watchers: %s handler: %w", h.kind, err)
		}
	}
	return s, nil
}

// handler enqueues an informer's changes. involve is set for events: the kind of object the
// informer's events are about (others, which a server ignoring the field selector would send,
// are ignored).
func (w *Watcher) handler(kind, involve string) cache.ResourceEventHandler {
	wanted := func(obj any) bool {
		if involve == "" {
			return true
		}
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		e, ok := obj.(*corev1.Event)
		return !ok || (e.InvolvedObject.Kind == involve && !(involve == bus.KindPod && slices.Contains(noisyEventReasons, e.Reason)))
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !wanted(obj) {
				return
			}
			if initial {
				return // the initial list: the first resync pass publishes it, once the caches are synced
			}
			w.enqueue(kind, obj, bus.Added)
		},
		UpdateFunc: func(oldObj, newObj any) {
			if !wanted(newObj) {
				return
			}
			if o, ok := oldObj.(object); ok {
				if n, ok := newObj.(object); ok && n.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
					return // a relist of an unchanged object: the resync passes cover it
				}
			}
			if unchanged(oldObj, newObj) {
				// A write to fields the detectors do not read (the Ready condition, an IP, an
				// annotation...): publishing it would only evaluate the same facts again.
				w.o.Metrics.unchanged(kind)
				return
			}
			w.enqueue(kind, newObj, bus.Updated)
		},
		DeleteFunc: func(obj any) {
			if !wanted(obj) {
				return
			}
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.enqueue(kind, obj, bus.Deleted)
		},
	}
}

// unchanged reports whether an update of a pod changed nothing its trimmed form keeps.
func unchanged(oldObj, newObj any) bool {
	o, ok := oldObj.(*podRecord)
	if !ok {
		return false
	}
	n, ok := newObj.(*podRecord)
	return ok && o.uid == n.uid && o.fingerprint == n.fingerprint
}

func (w *Watcher) enqueue(kind string, obj any, t bus.ObservationType) {
	m, ok := obj.(object)
	if !ok {
		w.o.Logger.Warn("ignoring object of unexpected type", zap.String("kind", kind), zap.String("type", fmt.Sprintf("%T", obj)))
		return
	}
	if w.exclude[m.GetNamespace()] {
		return
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
	w.peak = max(w.peak, len(w.pending))
	w.mu.Unlock()
	w.queue.Add(it)
}

// Run starts the informers, waits for their caches to sync (an error if they cannot), then
// publishes until ctx is done. It returns after the workers have stopped.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.queue.ShutDown()
	var synced []cache.InformerSynced
	var informers sync.WaitGroup
	ictx, stopInformers := context.WithCancel(ctx)
	for _, s := range w.scopes {
		for _, inf := range []cache.SharedIndexInformer{s.pods, s.pvcs, s.podEvents, s.pvcEvents} {
			informers.Go(func() { inf.RunWithContext(ictx) })
			synced = append(synced, inf.HasSynced)
		}
	}
	defer func() {
		stopInformers()
		informers.Wait()
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
	wg.Go(func() { w.resyncLoop(ctx) })
	wg.Go(func() { w.runSpark(ctx) })
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// resyncLoop publishes every cached pod and PVC as a Resync observation right away (the
// initial list) and then every Resync period, so time-based detectors fire without a change.
// A pass publishes straight from the caches with Workers goroutines: it does not go through
// the change queue, where 20,000 resync items would delay real changes behind them (and grow
// the queue's maps to the size of the cluster for good). A resync that fails is retried
// through the queue.
func (w *Watcher) resyncLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		w.resync(ctx)
		t.Reset(max(w.o.Resync-time.Since(start), w.o.Resync/10))
	}
}

// resync runs one resync pass.
func (w *Watcher) resync(ctx context.Context) {
	w.busy.Add(1)
	defer w.busy.Add(-1)
	var items []item
	for _, s := range w.scopes {
		for kind, inf := range map[string]cache.SharedIndexInformer{bus.KindPod: s.pods, bus.KindPVC: s.pvcs} {
			for _, key := range inf.GetStore().ListKeys() {
				ns, name, err := cache.SplitMetaNamespaceKey(key)
				if err == nil && !w.exclude[ns] {
					items = append(items, item{kind: kind, namespace: ns, name: name})
				}
			}
		}
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range w.o.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				w.waitBacklog(ctx)
				from := int(next.Add(resyncBatch)) - resyncBatch
				if from >= len(items) {
					return
				}
				w.resyncBatch(ctx, items[from:min(from+resyncBatch, len(items))])
			}
		})
	}
	wg.Wait()
}

// resyncBatch publishes the Resync observations of some items, in one round trip when the
// publisher can.
func (w *Watcher) resyncBatch(ctx context.Context, items []item) {
	var (
		its []item
		obs []*bus.Observation
	)
	for _, it := range items {
		obj := w.get(it)
		if obj == nil {
			continue // deleted since the pass began
		}
		o, err := w.observation(it, obj, bus.Resync)
		if err != nil {
			w.resyncFailed(ctx, it, err)
			continue
		}
		its, obs = append(its, it), append(obs, o)
	}
	var errs []error
	if bp, ok := w.o.Publisher.(BatchPublisher); ok {
		errs = bp.PublishObservations(ctx, obs)
	} else {
		errs = make([]error, len(obs))
		for i, o := range obs {
			errs[i] = w.o.Publisher.PublishObservation(ctx, o)
		}
	}
	for i, err := range errs {
		if err != nil {
			w.resyncFailed(ctx, its[i], err)
		} else {
			w.o.Metrics.published(its[i].kind, bus.Resync)
		}
	}
}

// waitBacklog waits while the publisher's backlog is above maxBacklog (at most a resync
// period; an error reading it does not stop the pass).
func (w *Watcher) waitBacklog(ctx context.Context) {
	b, ok := w.o.Publisher.(Backlogger)
	if !ok {
		return
	}
	limit := maxBacklog
	if _, batches := w.o.Publisher.(BatchPublisher); batches {
		limit = maxBacklog / resyncBatch
	}
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, w.o.Resync, true, func(ctx context.Context) (bool, error) {
		// One question has its own deadline: the poll's ctx ends only with the resync, and a
		// JetStream call waits until its ctx's deadline while NATS is away.
		qctx, cancel := context.WithTimeout(ctx, backlogQuery)
		defer cancel()
		n, err := b.ObservationBacklog(qctx)
		return err != nil || n <= limit, nil
	})
}

// resyncFailed drops what cannot be published and retries the rest through the queue.
func (w *Watcher) resyncFailed(ctx context.Context, it item, err error) {
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, bus.ErrMalformed):
		w.o.Logger.Error("dropping an observation that cannot be published", zap.String("kind", it.kind),
			zap.String("namespace", it.namespace), zap.String("name", it.name), zap.Error(err))
		w.o.Metrics.publishError()
	default:
		w.o.Logger.Warn("resync publish failed; will retry", zap.String("kind", it.kind),
			zap.String("namespace", it.namespace), zap.String("name", it.name), zap.Error(err))
		w.o.Metrics.publishError()
		w.mu.Lock()
		if _, queued := w.pending[it]; !queued {
			w.pending[it] = pendingState{typ: bus.Resync}
		}
		w.mu.Unlock()
		w.queue.AddRateLimited(it)
	}
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
			n += len(s.podEvents.GetStore().ListKeys()) + len(s.pvcEvents.GetStore().ListKeys())
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
	if len(w.pending) == 0 && w.peak > shrinkPending {
		// A map keeps its size after a burst (thousands of pods created at once): start afresh.
		w.pending, w.peak = map[item]pendingState{}, 0
	}
	w.mu.Unlock()
	if !ok {
		p.typ = bus.Updated // a retry: the pending entry was consumed by the failed attempt
	}
	var obj object
	if p.typ != bus.Deleted {
		obj = w.get(it)
	}
	if obj == nil {
		if p.last == nil {
			return nil // deleted and already published, or never seen
		}
		obj, p.typ = p.last, bus.Deleted
	}
	if err := w.publishObject(ctx, it, obj, p.typ); err != nil {
		if p.typ == bus.Deleted {
			w.mu.Lock()
			if _, again := w.pending[it]; !again {
				w.pending[it] = p // keep the final state for the retry
			}
			w.mu.Unlock()
		}
		return err
	}
	return nil
}

// publishObject publishes one observation of obj.
func (w *Watcher) publishObject(ctx context.Context, it item, obj object, typ bus.ObservationType) error {
	o, err := w.observation(it, obj, typ)
	if err != nil {
		return err
	}
	if err := w.o.Publisher.PublishObservation(ctx, o); err != nil {
		return err
	}
	w.o.Metrics.published(it.kind, typ)
	return nil
}

// observation is the envelope of obj.
func (w *Watcher) observation(it item, obj object, typ bus.ObservationType) (*bus.Observation, error) {
	var (
		raw []byte
		err error
	)
	if r, ok := obj.(*podRecord); ok {
		raw, err = r.JSON()
	} else {
		raw, err = json.Marshal(obj)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s: %w", it.kind, it.namespace, it.name, err)
	}
	o := &bus.Observation{
		Version: bus.EnvelopeVersion, Cluster: w.o.Cluster, Type: typ, Kind: it.kind,
		Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID()),
		ResourceVersion: obj.GetResourceVersion(), ObservedAt: w.o.Now().UTC(), Object: raw,
	}
	if e, ok := obj.(*corev1.Event); ok {
		o.Reason = e.Reason
	}
	if typ == bus.Resync {
		o.Epoch = o.ObservedAt.UnixNano() / int64(w.o.Resync)
	}
	return o, nil
}

func (w *Watcher) get(it item) object {
	s := w.scopeFor(it.namespace)
	if s == nil {
		return nil
	}
	var (
		obj any
		ok  bool
	)
	key := it.namespace + "/" + it.name
	switch it.kind {
	case bus.KindPod:
		obj, ok, _ = s.pods.GetStore().GetByKey(key)
	case bus.KindPVC:
		obj, ok, _ = s.pvcs.GetStore().GetByKey(key)
	case bus.KindEvent:
		if obj, ok, _ = s.podEvents.GetStore().GetByKey(key); !ok {
			obj, ok, _ = s.pvcEvents.GetStore().GetByKey(key)
		}
	case bus.KindSparkApp, bus.KindScheduledSparkApp:
		obj = w.sparkObject(it.kind, it.namespace, it.name)
		ok = obj != nil
	}
	if !ok {
		return nil
	}
	m, _ := obj.(object)
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

// SparkApp returns the cached SparkApplication, or nil (unknown, or not watched).
func (w *Watcher) SparkApp(namespace, name string) *spark.Application {
	a, _ := w.sparkObject(bus.KindSparkApp, namespace, name).(*spark.Application)
	return a
}

// ScheduledSparkApp returns the cached ScheduledSparkApplication, or nil.
func (w *Watcher) ScheduledSparkApp(namespace, name string) *spark.ScheduledApplication {
	s, _ := w.sparkObject(bus.KindScheduledSparkApp, namespace, name).(*spark.ScheduledApplication)
	return s
}

func (w *Watcher) sparkObject(kind, namespace, name string) any {
	st := w.spark.store(kind, namespace)
	if st == nil {
		return nil
	}
	obj, _, _ := st.GetByKey(namespace + "/" + name)
	return obj
}

// Pod returns the cached (trimmed) pod, or nil.
func (w *Watcher) Pod(namespace, name string) *corev1.Pod {
	s := w.scopeFor(namespace)
	if s == nil {
		return nil
	}
	obj, ok, _ := s.pods.GetStore().GetByKey(namespace + "/" + name)
	if !ok {
		return nil
	}
	switch o := obj.(type) {
	case *podRecord:
		p, err := o.Pod()
		if err != nil {
			w.o.Logger.Error("decoding a cached pod", zap.String("namespace", namespace), zap.String("name", name), zap.Error(err))
			return nil
		}
		return p
	case *corev1.Pod:
		return o
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
	inf := s.podEvents
	if kind == bus.KindPVC {
		inf = s.pvcEvents
	}
	var objs []any
	if uid != "" {
		objs, _ = inf.GetIndexer().ByIndex(indexInvolvedUID, uid)
	}
	if len(objs) == 0 {
		objs, _ = inf.GetIndexer().ByIndex(indexInvolvedObj, kind+"/"+namespace+"/"+name)
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

// backlogQuery bounds one question about the observation backlog (nats.go's JetStream API
// default).
const backlogQuery = 5 * time.Second
