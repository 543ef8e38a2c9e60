package watchers

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/spark"
)

// DefaultDiscoveryInterval is how often the watchers look for the SparkApplication CRD while
// it is not installed.
const DefaultDiscoveryInterval = time.Minute

// sparkWatch holds the informers of the Spark operator's resources (SparkApplications and
// ScheduledSparkApplications), one per watched namespace (or one cluster-wide), made once their
// CRDs are served.
type sparkWatch struct {
	mu        sync.RWMutex
	informers map[string]map[string]cache.SharedIndexInformer // by bus kind, then scope namespace
}

// sparkKinds are the operator's resources watched, by the bus kind they are published as.
var sparkKinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
	trim cache.TransformFunc
}{
	{bus.KindSparkApp, spark.ApplicationResource, TrimSparkApp},
	{bus.KindScheduledSparkApp, spark.ScheduledApplicationResource, TrimScheduledSparkApp},
}

func (s *sparkWatch) store(kind, namespace string) cache.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if inf, ok := s.informers[kind][namespace]; ok {
		return inf.GetStore()
	}
	if inf, ok := s.informers[kind][""]; ok {
		return inf.GetStore()
	}
	return nil
}

// sparkServed returns the resources of sparkoperator.k8s.io/v1beta2 the API server serves
// (nil when not sparkapplications). The request is made with ctx (discovery's own methods take
// none): it waits in the client's rate limiter with everything else, and a stop must not wait
// for it.
func (w *Watcher) sparkServed(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list metav1.APIResourceList
	err := w.o.Client.Discovery().RESTClient().Get().AbsPath("/apis", spark.ApplicationResource.Group, spark.ApplicationResource.Version).
		Do(ctx).Into(&list)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	if !served[spark.ApplicationResource.Resource] {
		return nil, nil
	}
	return served, nil
}

// runSpark watches SparkApplications once their CRD is installed: it looks for it at the start
// and then every DiscoveryInterval (saying once that it does not watch them), then runs their
// informers until ctx ends. Every application is published when first listed and on each
// change (not in the resync passes: no detector of applications depends on time).
func (w *Watcher) runSpark(ctx context.Context) {
	if w.o.Dynamic == nil {
		return
	}
	told := false
	var served map[string]bool
	for {
		var err error
		if served, err = w.sparkServed(ctx); served != nil {
			break
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.o.Logger.Warn("looking for the SparkApplication CRD failed; will look again", zap.Error(err))
		case !told:
			w.o.Logger.Info("the SparkApplication CRD (sparkoperator.k8s.io/v1beta2) is not installed: not watching SparkApplications; looking again every "+w.o.DiscoveryInterval.String(),
				zap.Duration("interval", w.o.DiscoveryInterval))
			told = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.o.DiscoveryInterval):
		}
	}
	var (
		run     []cache.SharedIndexInformer
		watched []string
	)
	w.spark.mu.Lock()
	w.spark.informers = map[string]map[string]cache.SharedIndexInformer{}
	for _, k := range sparkKinds {
		if !served[k.gvr.Resource] {
			continue // a ScheduledSparkApplication CRD not installed with the other
		}
		watched = append(watched, k.kind+"s")
		w.spark.informers[k.kind] = map[string]cache.SharedIndexInformer{}
		for _, s := range w.scopes {
			inf := dynamicinformer.NewFilteredDynamicInformer(w.o.Dynamic, k.gvr, s.namespace, 0, cache.Indexers{}, nil).Informer()
			err := inf.SetTransform(k.trim)
			if err == nil {
				_, err = inf.AddEventHandler(w.sparkHandler(k.kind))
			}
			if err != nil {
				w.spark.mu.Unlock()
				w.o.Logger.Error(k.kind+" informer", zap.Error(err))
				return
			}
			w.spark.informers[k.kind][s.namespace] = inf
			run = append(run, inf)
		}
	}
	w.spark.mu.Unlock()
	w.o.Logger.Info("watching SparkApplications", zap.Strings("resources", watched))
	var wg sync.WaitGroup
	for _, inf := range run {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Wait()
}

// sparkHandler enqueues every object of kind listed or changed (the initial list included).
func (w *Watcher) sparkHandler(kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { w.enqueue(kind, obj, bus.Added) },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(object)
			n, ok2 := newObj.(object)
			if ok1 && ok2 && n.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a relist of an unchanged application
			}
			w.enqueue(kind, newObj, bus.Updated)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.enqueue(kind, obj, bus.Deleted)
		},
	}
}

// Trimmers of the Spark operator's objects, as SharedInformer transforms: an object from the
// dynamic client becomes the part podmedic reads (package spark), without managed fields and
// annotations; anything else passes through unchanged.
var (
	TrimSparkApp          = sparkTrimmer(spark.Decode)
	TrimScheduledSparkApp = sparkTrimmer(spark.DecodeScheduled)
)

func sparkTrimmer[T metav1.Object](decode func([]byte) (T, error)) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		raw, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		o, err := decode(raw)
		if err != nil {
			return nil, err
		}
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
		return o, nil
	}
}
