//go:build faults

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
)

// TestFaultAPIServerRestartDuringStorm: in the middle of a storm of 1,000 OOM-killed workers
// (50 statuses a second) the kube-apiserver is stopped and started again (same etcd, same
// port). podmedic's informers lose their watches and must list again (a watch from before the
// restart is answered 410 Gone by the new apiserver, which the test checks); every failure —
// written before, during (retried by the storm until the apiserver is back) and after the
// restart — gives exactly one finding.
func TestFaultAPIServerRestartDuringStorm(t *testing.T) {
	const pods = 1000
	begin := time.Now()
	env := cluster(t)
	ns := actionNamespace(t, env, "fault-kube")
	pm := startPodmedic(t, env, t.TempDir(), "--config", writeRules(t, ns, oomRules), "--resync", "10m")
	c := stormClient(t, env)
	var (
		restart time.Duration
		before  string // a resourceVersion of the pods from before the restart
	)
	uids := oomStorm(t, c, ns, pods, 50, func() {
		list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{Limit: 1})
		require.NoError(t, err)
		before = list.ResourceVersion
		found := len(pm.all())
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		require.NoError(t, env.RestartAPIServer(ctx))
		restart = time.Since(start)
		t.Logf("kube-apiserver restarted in %s (%d findings before, %d after)", restart.Round(time.Millisecond), found, len(pm.all()))
	})
	stormEnd := time.Now()
	n := waitCounted(t, 3*time.Minute, pods, func() int { return len(pm.all()) })
	t.Logf("%d findings %s after the storm", n, time.Since(stormEnd).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // late duplicates would show now
	tl := countFindings(uids, findingCount(finding.OOMKilled, pm))
	relist := watchFromGone(t, c, ns, before)
	t.Logf("%s; a watch from resourceVersion %s (before the restart) is answered 410 Gone: %v; repeats %.0f",
		tl, before, relist, pm.metric("podmedic_findings_repeated_total"))
	summary(t, begin, "%s; apiserver down and up again in %s; informers had to relist: %v", tl, restart.Round(time.Millisecond), relist)
	require.Zero(t, tl.missing, "failures without a finding")
	require.Zero(t, tl.duplicated, "failures reported twice")
	require.Zero(t, tl.extra)
	pm.stop()
}

// watchFromGone reports whether the apiserver refuses a watch of the namespace's pods from
// resourceVersion rv as expired (410 Gone): an informer that had rv could not resume its watch
// and had to list again.
func watchFromGone(t *testing.T, c kubernetes.Interface, ns, rv string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		return apierrors.IsGone(err) || apierrors.IsResourceExpired(err)
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				return apierrors.IsGone(err) || apierrors.IsResourceExpired(err)
			}
			return false // events from rv on: the watch could resume
		case <-ctx.Done():
			return false
		}
	}
}
