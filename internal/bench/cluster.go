package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podmedic/podmedic/internal/bench/podgen"
)

// FastClient is a clientset without the client-side rate limit that slows bulk writes.
func FastClient(cfg *rest.Config) (kubernetes.Interface, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 5000, 10000
	c.UserAgent = "podmedic-bench"
	return kubernetes.NewForConfig(c)
}

// EnsureNamespace creates a namespace if it does not exist.
func EnsureNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// CreatePods creates the pods [from, to) of podgen in namespace with workers goroutines, each
// bound to its node and, when running is set, given the kubelet's running status through the
// status subresource. It returns how long it took.
func CreatePods(ctx context.Context, c kubernetes.Interface, namespace string, from, to, workers int, running bool,
	progress func(done int)) (time.Duration, error) {
	start := time.Now()
	var (
		next     atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	next.Store(int64(from))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= to || ctx.Err() != nil {
					return
				}
				if err := createPod(ctx, c, namespace, i, running); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				if n := done.Add(1); progress != nil && n%2000 == 0 {
					progress(int(n))
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// eachIndex calls f for 0 to n-1 from workers goroutines. A worker stops at its first error;
// the first error of all is returned once every worker has stopped.
func eachIndex(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		once  sync.Once
		first error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func createPod(ctx context.Context, c kubernetes.Interface, namespace string, i int, running bool) error {
	p := podgen.AirflowWorker(namespace, i)
	p.Spec.NodeName = podgen.Node(i)
	created, err := retry(ctx, func() (*corev1.Pod, error) {
		return c.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{})
	})
	if err != nil {
		return fmt.Errorf("create pod %d: %w", i, err)
	}
	if !running {
		return nil
	}
	created.Status = podgen.RunningStatus(i)
	if _, err := retry(ctx, func() (*corev1.Pod, error) {
		return c.CoreV1().Pods(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	}); err != nil {
		return fmt.Errorf("status of pod %d: %w", i, err)
	}
	return nil
}

// retry retries an apiserver call that was throttled (429) or timed out.
func retry(ctx context.Context, f func() (*corev1.Pod, error)) (*corev1.Pod, error) {
	for attempt := 0; ; attempt++ {
		p, err := f()
		if err == nil || attempt == 5 || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)) {
			return p, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
}
