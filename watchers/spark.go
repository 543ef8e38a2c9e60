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
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/spark"
)

// DefaultDiscoveryInterval is how often the watchers look for the SparkApplication CRD while
// it is not installed.
const DefaultDiscoveryInterval = time.Minute

// sparkWatch holds the SparkApplication informers, one per watched namespace (or one
// cluster-wide), made once the CRD is served.
type sparkWatch struct {
	mu        sync.RWMutex
	informers map[string]cache.SharedIndexInformer // by scope namespace
}

func (s *sparkWatch) store(namespace string) cache.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if inf, ok := s.informers[namespace]; ok {
		return inf.GetStore()
	}
	if inf, ok := s.informers[""]; ok {
		return inf.GetStore()
	}
	return nil
}

// sparkServed reports whether the API server serves sparkoperator.k8s.io/v1beta2
// sparkapplications. The request is made with ctx (discovery's own methods take none): it
// waits in the client's rate limiter with everything else, and a stop must not wait for it.
func (w *Watcher) sparkServed(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list metav1.APIResourceList
	err := w.o.Client.Discovery().RESTClient().Get().AbsPath("/apis", spark.ApplicationResource.Group, spark.ApplicationResource.Version).
		Do(ctx).Into(&list)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == spark.ApplicationResource.Resource {
			return true, nil
		}
	}
	return false, nil
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
	for {
		ok, err := w.sparkServed(ctx)
		if ok {
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
	var run []cache.SharedIndexInformer
	w.spark.mu.Lock()
	w.spark.informers = map[string]cache.SharedIndexInformer{}
	for _, s := range w.scopes {
		inf := dynamicinformer.NewFilteredDynamicInformer(w.o.Dynamic, spark.ApplicationResource, s.namespace, 0, cache.Indexers{}, nil).Informer()
		if err := inf.SetTransform(TrimSparkApp); err != nil {
			w.spark.mu.Unlock()
			w.o.Logger.Error("SparkApplication informer", zap.Error(err))
			return
		}
		if _, err := inf.AddEventHandler(w.sparkHandler()); err != nil {
			w.spark.mu.Unlock()
			w.o.Logger.Error("SparkApplication informer", zap.Error(err))
			return
		}
		w.spark.informers[s.namespace] = inf
		run = append(run, inf)
	}
	w.spark.mu.Unlock()
	w.o.Logger.Info("watching SparkApplications")
	var wg sync.WaitGroup
	for _, inf := range run {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Wait()
}

// sparkHandler enqueues every application listed or changed (the initial list included).
func (w *Watcher) sparkHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { w.enqueue(bus.KindSparkApp, obj, bus.Added) },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(object)
			n, ok2 := newObj.(object)
			if ok1 && ok2 && n.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a relist of an unchanged application
			}
			w.enqueue(bus.KindSparkApp, newObj, bus.Updated)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			w.enqueue(bus.KindSparkApp, obj, bus.Deleted)
		},
	}
}

// TrimSparkApp turns a SparkApplication from the dynamic client into the part podmedic reads
// (package spark), as a SharedInformer transform; anything else passes through unchanged.
func TrimSparkApp(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	a, err := spark.Decode(raw)
	if err != nil {
		return nil, err
	}
	a.ManagedFields = nil
	a.Annotations = nil
	return a, nil
}
