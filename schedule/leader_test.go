package schedule

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/actions"
)

// TestLeaseElection: of two replicas on one Lease exactly one leads; when it stops, it
// releases the lease (ReleaseOnCancel) and the other leads within seconds, well before the
// lease would have expired; the two never lead at the same time.
func TestLeaseElection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := fake.NewClientset()
		var (
			mu      sync.Mutex
			leads   []string
			current atomic.Int32
			most    atomic.Int32
		)
		type replica struct {
			el     *LeaseElector
			cancel context.CancelFunc
			done   chan error
		}
		run := func(id string) *replica {
			el, err := NewLeaseElector(LeaseOptions{Client: client, Namespace: "podmedic", Identity: id,
				LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
				Logger: zaptest.NewLogger(t)})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			r := &replica{el: el, cancel: cancel, done: make(chan error, 1)}
			go func() {
				r.done <- el.Run(ctx, func(ctx context.Context) {
					n := current.Add(1)
					if n > most.Load() {
						most.Store(n)
					}
					mu.Lock()
					leads = append(leads, id+"@"+time.Now().UTC().Format(time.TimeOnly))
					mu.Unlock()
					<-ctx.Done()
					time.Sleep(500 * time.Millisecond) // a run winding down
					current.Add(-1)
				})
			}()
			return r
		}
		a := run("a")
		time.Sleep(time.Second)
		b := run("b")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		assert.True(t, a.el.Leading())
		assert.False(t, b.el.Leading())

		lease, err := client.CoordinationV1().Leases("podmedic").Get(context.Background(), DefaultLeaseName, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "a", *lease.Spec.HolderIdentity)

		stopped := time.Now()
		a.cancel()
		require.NoError(t, <-a.done)
		for !b.el.Leading() {
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(stopped)
		assert.Less(t, took, 5*time.Second, "the lease was released, not left to expire")
		b.cancel()
		require.NoError(t, <-b.done)

		assert.Equal(t, int32(1), most.Load(), "never two leaders at once")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, leads, 2)
		assert.Equal(t, "a@00:00:00", leads[0], "a leads from the start")
		assert.True(t, strings.HasPrefix(leads[1], "b@00:00:3"), "b leads right after a stopped at 00:00:31: %s", leads[1])
	})
}

// TestSchedulerOnLease: two schedulers on one Lease run a job's ticks once, on the leader;
// after the leader stops, the other runs the next ticks.
func TestSchedulerOnLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := fake.NewClientset()
		cfg := loadConfig(t, tenSeconds)
		claimer := actions.NewMemoryClaimer(time.Now)
		runner := newFakeRunner()
		var rs []*running
		for _, id := range []string{"a", "b"} {
			el, err := NewLeaseElector(LeaseOptions{Client: client, Namespace: "podmedic", Identity: id})
			require.NoError(t, err)
			rs = append(rs, start(t, Options{Config: cfg, Sweeper: runner, Notifier: &recorder{}, Claimer: claimer, Elector: el}))
			time.Sleep(time.Second)
		}
		time.Sleep(35 * time.Second) // 00:00:36
		synctest.Wait()
		assert.True(t, rs[0].s.Leading())
		assert.False(t, rs[1].s.Leading())
		rs[0].stop()
		time.Sleep(30 * time.Second) // 00:01:06
		synctest.Wait()
		assert.True(t, rs[1].s.Leading())
		ticks := runner.ticks(t, "every-10s") // each once
		assert.Equal(t, at0("00:00:00"), ticks[0])
		assert.Equal(t, at0("00:01:00"), ticks[len(ticks)-1])
		assert.Len(t, ticks, 7, "00:00 to 01:00, every 10s, none lost in the handover at 00:36")
	})
}

func TestLeaseTimings(t *testing.T) {
	_, err := NewLeaseElector(LeaseOptions{Client: fake.NewClientset(), LeaseDuration: 5 * time.Second, RenewDeadline: 10 * time.Second})
	assert.ErrorContains(t, err, "lease duration (5s) > renew deadline (10s)")
	_, err = NewLeaseElector(LeaseOptions{Client: fake.NewClientset(), RetryPeriod: 9 * time.Second})
	assert.ErrorContains(t, err, "1.2 x retry period (9s)")
	el, err := NewLeaseElector(LeaseOptions{Client: fake.NewClientset(), Namespace: "podmedic"})
	require.NoError(t, err)
	assert.Contains(t, el.Identity(), "_", "host name and a random suffix")
	_, err = NewLeaseElector(LeaseOptions{})
	assert.Error(t, err)
}
