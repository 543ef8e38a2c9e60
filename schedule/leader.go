package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/podmedic/podmedic/actions"
)

// Elector decides which replica runs the schedules.
type Elector interface {
	// Run campaigns until ctx ends and calls lead each time this replica becomes the leader;
	// lead's context ends when the leadership does (or ctx). Run returns nil when ctx ends.
	Run(ctx context.Context, lead func(ctx context.Context)) error
	// Identity names this replica in the lease and in reports.
	Identity() string
}

// AlwaysLeader is the Elector of a single process (and of tests): it leads until ctx ends.
type AlwaysLeader struct{ ID string }

// Run implements Elector.
func (a AlwaysLeader) Run(ctx context.Context, lead func(context.Context)) error {
	lead(ctx)
	return nil
}

// Identity implements Elector.
func (a AlwaysLeader) Identity() string {
	if a.ID == "" {
		return DefaultIdentity()
	}
	return a.ID
}

// Defaults of LeaseOptions: client-go's and kube-controller-manager's.
const (
	DefaultLeaseName     = "podmedic-schedules"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// LeaseOptions configure a LeaseElector.
type LeaseOptions struct {
	Client kubernetes.Interface
	// Namespace of the Lease: default $POD_NAMESPACE, else the service account's namespace,
	// else "default".
	Namespace string
	// Name of the Lease; default podmedic-schedules.
	Name string
	// Identity of this replica; default DefaultIdentity().
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go; defaults 15s, 10s, 2s.
	// A leader that cannot renew for RenewDeadline stops leading; a standby takes over at most
	// LeaseDuration after the last renewal, or at once after a clean stop (the lease is
	// released).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Logger                                    *zap.Logger
}

// LeaseElector elects the leader with a coordination.k8s.io Lease (client-go's leader
// election, ReleaseOnCancel): with one replica it is the leader; with several, one is.
type LeaseElector struct {
	o       LeaseOptions
	leading atomic.Bool
}

var _ Elector = (*LeaseElector)(nil)

// DefaultIdentity is the host name (the pod's name in Kubernetes) with a random suffix, as
// kube-controller-manager does: two processes on one host (or a restarted container whose
// old lease is still held) are two candidates, never one leader twice.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "podmedic"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// LeaseNamespace is where the Lease lives by default: podmedic's own namespace
// (actions.OwnNamespace: $POD_NAMESPACE, else the namespace of the pod's service account),
// else "default".
func LeaseNamespace() string {
	if ns := actions.OwnNamespace(""); ns != "" {
		return ns
	}
	return metav1.NamespaceDefault
}

// NewLeaseElector returns a LeaseElector.
func NewLeaseElector(o LeaseOptions) (*LeaseElector, error) {
	if o.Client == nil {
		return nil, errors.New("schedule: the lease elector needs a Kubernetes client")
	}
	if o.Namespace == "" {
		o.Namespace = LeaseNamespace()
	}
	if o.Name == "" {
		o.Name = DefaultLeaseName
	}
	if o.Identity == "" {
		o.Identity = DefaultIdentity()
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.LeaseDuration <= o.RenewDeadline || float64(o.RenewDeadline) <= leaderelection.JitterFactor*float64(o.RetryPeriod) {
		return nil, fmt.Errorf("schedule: lease timings need lease duration (%s) > renew deadline (%s) > %.1f x retry period (%s)",
			o.LeaseDuration, o.RenewDeadline, leaderelection.JitterFactor, o.RetryPeriod)
	}
	return &LeaseElector{o: o}, nil
}

// Identity implements Elector.
func (e *LeaseElector) Identity() string { return e.o.Identity }

// Leading reports whether this replica holds the lease.
func (e *LeaseElector) Leading() bool { return e.leading.Load() }

// Run implements Elector. When ctx ends while leading, lead's context ends first and Run waits
// for lead to return before it releases the lease, so the next leader never overlaps this
// one's runs; a leadership lost to a failed renewal ends lead's context at once.
func (e *LeaseElector) Run(ctx context.Context, lead func(context.Context)) error {
	log := e.o.Logger.With(zap.String("lease", e.o.Namespace+"/"+e.o.Name), zap.String("identity", e.o.Identity))
	for ctx.Err() == nil {
		// The elector's own context outlives ctx until lead has returned (then it releases).
		ectx, ecancel := context.WithCancel(context.WithoutCancel(ctx))
		started, led := make(chan struct{}), make(chan struct{})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: e.o.Namespace, Name: e.o.Name},
				Client:     e.o.Client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: e.o.Identity},
			},
			LeaseDuration:   e.o.LeaseDuration,
			RenewDeadline:   e.o.RenewDeadline,
			RetryPeriod:     e.o.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            e.o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					close(started)
					defer close(led)
					e.leading.Store(true)
					defer e.leading.Store(false)
					log.Info("became the leader")
					jctx, cancel := context.WithCancel(lctx)
					defer cancel()
					stop := context.AfterFunc(ctx, cancel)
					defer stop()
					lead(jctx)
				},
				OnStoppedLeading: func() {},
				OnNewLeader: func(id string) {
					if id != e.o.Identity {
						log.Info("another replica leads", zap.String("leader", id))
					}
				},
			},
		})
		if err != nil {
			ecancel()
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			le.Run(ectx)
		}()
		select {
		case <-done: // leadership lost (or never won before ectx ended)
		case <-ctx.Done():
			select {
			case <-started:
				<-led // lead saw ctx end; its runs are over
			default:
			}
			ecancel() // release the lease
			<-done
		}
		ecancel()
		select {
		case <-started:
			<-led
			if ctx.Err() == nil {
				log.Warn("lost the leadership; campaigning again")
			}
		default:
		}
	}
	return nil
}
