package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/httpserve"
	"github.com/podmedic/podmedic/overrides"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/webhook"
)

// WebhookOptions configure the admission webhook that applies memory overrides.
type WebhookOptions struct {
	// Addr serves POST /mutate/pods over HTTPS (e.g. :8443); empty: no webhook, and memory
	// proposals of Airflow tasks stay advisory.
	Addr string
	// Secret (in podmedic's own namespace) holds the webhook's CA and serving certificate;
	// Config is the MutatingWebhookConfiguration whose caBundle podmedic keeps. The chart
	// creates both; podmedic fills them.
	Secret, Config string
	// Hosts are the DNS names and IP addresses the serving certificate is for (the Service's
	// name, e.g. podmedic.podmedic.svc).
	Hosts []string
}

// Defaults of WebhookOptions.
const (
	DefaultWebhookSecret = "podmedic-webhook-tls"
	DefaultWebhookConfig = "podmedic"
)

// webhookStage serves the admission webhook from the overrides the actions stage stores.
type webhookStage struct {
	o     WebhookOptions
	store *overrides.Store
	cache *overrides.Cache
	watch func(ctx context.Context) error // the cache's watch of the bucket
	certs *webhook.Certs
	ln    net.Listener
	reg   prometheus.Registerer
}

// newWebhook opens the overrides bucket and listens for admissions (a bad address fails the
// start); serve adds the handler once the guard, whose protected namespaces it honours,
// exists.
func newWebhook(ctx context.Context, o WebhookOptions, cfg *config.Config, client kubernetes.Interface, b *bus.Bus, replicas int,
	namespace string, reg prometheus.Registerer, log *zap.Logger) (*webhookStage, error) {
	if namespace == "" {
		return nil, fmt.Errorf("webhook: podmedic's own namespace is unknown (set POD_NAMESPACE): its Secret %s lives there", o.Secret)
	}
	if o.Secret == "" {
		o.Secret = DefaultWebhookSecret
	}
	if o.Config == "" {
		o.Config = DefaultWebhookConfig
	}
	kv, err := overrides.OpenBucket(ctx, b.JetStream(), replicas, cfg.Overrides.TTL.Duration)
	if err != nil {
		return nil, err
	}
	w := &webhookStage{o: o, store: overrides.NewStore(kv, nil).WithAudit(b), cache: overrides.NewCache(), reg: reg}
	w.watch = func(ctx context.Context) error { return w.cache.Run(ctx, kv) }
	if !cfg.DryRun {
		w.cache.OnChange(overrideEvents(ctx, client, log))
	}
	var dns []string
	var ips []net.IP
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	if len(dns) == 0 && len(ips) == 0 {
		dns = []string{"podmedic." + namespace + ".svc"}
	}
	w.certs, err = webhook.NewCerts(webhook.CertOptions{Client: client, Namespace: namespace, Secret: o.Secret, Config: o.Config,
		DNSNames: dns, IPs: ips, Logger: log.Named("certs")})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("webhook: listen on %s: %w", o.Addr, err)
	}
	w.ln = ln
	return w, nil
}

// serve runs the cache's watch, the certificate keeper, the informers of the namespaces'
// LimitRanges and ResourceQuotas and (once they have synced) the HTTPS server under g.
func (w *webhookStage) serve(gctx context.Context, g *errgroup.Group, client kubernetes.Interface, cluster string, namespaces []string,
	protected func(string) bool, maxLimit func(string) (resource.Quantity, bool), timeouts httpserve.Timeouts, log *zap.Logger) {
	b, sync := namespaceBounds(gctx, client, namespaces)
	m := webhook.New(webhook.Options{Cluster: cluster, Overrides: w.cache, Protected: protected, Bounds: b, MaxLimit: maxLimit, Logger: log})
	mux := http.NewServeMux()
	mux.Handle("POST /mutate/pods", m)
	mux.Handle("POST /mutate/sparkapplications", m)
	srv := timeouts.Server(mux)
	// HTTP/2 offered: the API server then multiplexes its admission calls over one connection
	// instead of opening (and handshaking) one per concurrent call.
	srv.TLSConfig = &tls.Config{GetCertificate: w.certs.GetCertificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	ln := tls.NewListener(w.ln, srv.TLSConfig)
	g.Go(func() error { return w.watch(gctx) })
	if w.reg != nil {
		w.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "podmedic_memory_overrides",
			Help: "Memory overrides in force (not expired, not revoked), as this replica's webhook sees them.",
		}, func() float64 { return float64(w.cache.Active(time.Now())) }))
	}
	g.Go(func() error { w.certs.Run(gctx, 0); return nil })
	g.Go(func() error {
		// Until the LimitRanges and ResourceQuotas are known, admissions wait (and the API
		// server, after timeoutSeconds, admits the pod unchanged: failurePolicy Ignore).
		if !sync(gctx) {
			return nil
		}
		return httpserve.Serve(gctx, srv, ln)
	})
	log.Info("admission webhook: memory overrides applied at POST /mutate/pods and /mutate/sparkapplications", zap.String("addr", w.ln.Addr().String()),
		zap.String("secret", w.o.Secret), zap.String("configuration", w.o.Config))
}

// namespaceBounds watches the LimitRanges and ResourceQuotas of the namespaces (all when none)
// and returns them as webhook.Bounds, with a func that waits for the first list.
func namespaceBounds(ctx context.Context, client kubernetes.Interface, namespaces []string) (webhook.Bounds, func(context.Context) bool) {
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	byNS := map[string]webhook.ListerBounds{}
	var factories []informers.SharedInformerFactory
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		byNS[ns] = webhook.ListerBounds{LimitRanges: f.Core().V1().LimitRanges().Lister(), Quotas: f.Core().V1().ResourceQuotas().Lister()}
		factories = append(factories, f)
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	sync := func(ctx context.Context) bool {
		for _, f := range factories {
			for _, ok := range f.WaitForCacheSync(ctx.Done()) {
				if !ok {
					return false
				}
			}
		}
		return true
	}
	return boundsByNamespace(byNS), sync
}

// boundsByNamespace picks the namespace's informers (or the cluster-wide ones).
type boundsByNamespace map[string]webhook.ListerBounds

func (b boundsByNamespace) pick(ns string) (webhook.ListerBounds, bool) {
	if lb, ok := b[ns]; ok {
		return lb, true
	}
	lb, ok := b[metav1.NamespaceAll]
	return lb, ok
}

func (b boundsByNamespace) MaxMemory(ns string) (container, pod resource.Quantity) {
	if lb, ok := b.pick(ns); ok {
		return lb.MaxMemory(ns)
	}
	return container, pod
}

func (b boundsByNamespace) QuotaLeft(ns string) (limits, requests resource.Quantity, limited, requested bool) {
	if lb, ok := b.pick(ns); ok {
		return lb.QuotaLeft(ns)
	}
	return limits, requests, false, false
}

// ruleMaxLimit returns the max_limit of the memory rule named, in the rules in force (false:
// no such rule with a propose-memory-limit action any more).
func ruleMaxLimit(live *rules.Live) func(string) (resource.Quantity, bool) {
	return func(name string) (resource.Quantity, bool) {
		for _, r := range live.Engine().Config().Rules {
			if r.Name == name && r.Action != nil && r.Action.Type == finding.ActionProposeMemoryLimit && r.Action.Params.MaxLimit != nil {
				return r.Action.Params.MaxLimit.Quantity, true
			}
		}
		return resource.Quantity{}, false
	}
}

// overrideEvents writes a Kubernetes Event in the task's namespace for every change of a
// memory override (stored, raised, revoked — by this replica, another or the CLI), regarding
// the worker pod whose OOM kill made it, so `kubectl get events` in the task's namespace shows
// it. Every replica sees each change: the Event's name is the override's id and the bucket's
// revision, so the first replica creates it and the others find it there (AlreadyExists).
// The Event is written off the cache's watch, which must not wait on the API server.
func overrideEvents(ctx context.Context, client kubernetes.Interface, log *zap.Logger) func(overrides.Change, uint64) {
	instance, _ := os.Hostname()
	return func(ch overrides.Change, rev uint64) {
		o := ch.Override
		if o.Pod == "" {
			return // made before overrides named their pod: nothing to regard
		}
		reason, action := "MemoryOverrideStored", "Override"
		note := fmt.Sprintf("memory override %s of Airflow task %s.%s, %s: limit %s", o.ID, o.Task.DagID, o.Task.TaskID, o.Task.Of(), o.Limit)
		if o.Request != "" {
			note += ", request " + o.Request
		}
		note += fmt.Sprintf(" until %s (proposal %s, approved by %s)", o.ExpiresAt.UTC().Format(time.RFC3339), o.ProposalID, o.ApprovedBy)
		switch ch.Change {
		case "raised":
			reason = "MemoryOverrideRaised"
		case "revoked":
			reason, action = "MemoryOverrideRevoked", "Revoke"
			note = fmt.Sprintf("memory override %s of Airflow task %s.%s, %s, revoked by %s: new pods get the memory their task asks for",
				o.ID, o.Task.DagID, o.Task.TaskID, o.Task.Of(), o.RevokedBy)
		}
		ev := &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("podmedic-%s.%d", o.ID, rev), Namespace: o.Task.Namespace},
			EventTime:  metav1.NewMicroTime(time.Now()), ReportingController: "podmedic", ReportingInstance: instance,
			Action: action, Reason: reason, Type: corev1.EventTypeNormal, Note: note,
			Regarding: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: o.Task.Namespace, Name: o.Pod},
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, err := client.EventsV1().Events(o.Task.Namespace).Create(ctx, ev, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				log.Warn("event of a memory override change not written", zap.String("override", o.ID), zap.String("change", ch.Change), zap.Error(err))
			}
		}()
	}
}
