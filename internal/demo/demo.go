package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// Options configure Run.
type Options struct {
	Config     *config.Config
	ConfigName string
	Scenario   *Scenario // default: the bundled scenario
	Out        io.Writer
	Logger     *zap.Logger
	// Quiet is how long the pipeline must be idle before the next step; default 150ms.
	Quiet time.Duration
	// Inbox, when set (a loopback address), keeps the demo running after the night with the
	// local inbox served there, so the proposals can be approved or denied, until ctx ends.
	Inbox string
	// InboxReady is told the inbox's address once it listens.
	InboxReady func(addr string)
}

// Result is what the demo saw.
type Result struct {
	Findings []finding.Finding
	Pods     []string // every pod the scenario created, NAMESPACE/NAME
}

// clock is the simulated time of the night.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func indent(s, pad string) string {
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}
func hhmm(t time.Time) string { return t.UTC().Format("15:04") }
func plural(n int, s string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, s)
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// Run plays the scenario through podmedic's real pipeline and prints what podmedic reports.
func Run(ctx context.Context, o Options) (*Result, error) {
	sc := o.Scenario
	if sc == nil {
		var err error
		if sc, err = DefaultScenario(); err != nil {
			return nil, err
		}
	}
	if o.Quiet <= 0 {
		o.Quiet = 150 * time.Millisecond
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	dataDir, err := os.MkdirTemp("", "podmedic-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)

	var (
		mu  sync.Mutex
		res = &Result{}
		out = o.Out
		clk = &clock{}
	)
	clk.set(sc.Start)
	printf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	notify := notifier.Func(func(_ context.Context, n *finding.Notice) error {
		mu.Lock()
		defer mu.Unlock()
		if n.Type != finding.NoticeFinding || n.Finding == nil {
			fmt.Fprintf(out, "%s", indent(notifier.RenderNotice(n), "       "))
			return nil
		}
		f := n.Finding
		res.Findings = append(res.Findings, *f)
		fmt.Fprintf(out, "\n%s", indent(notifier.RenderText(f), "       "))
		if a := f.Action; a != nil {
			switch a.Mode {
			case finding.ModeApprove:
				fmt.Fprintf(out, "       -> proposed %s, waiting for a human to approve it\n", a.Type)
			case finding.ModeAuto:
				fmt.Fprintf(out, "       -> %s runs automatically within the budgets\n", a.Type)
			}
		}
		return nil
	})

	fmt.Fprintf(out, "podmedic demo: %s\n", sc.Name)
	fmt.Fprintf(out, "A simulated cluster plays the night of %s; podmedic's real pipeline watches it\n",
		sc.Start.Format("2006-01-02"))
	fmt.Fprintf(out, "(informers -> embedded NATS JetStream -> rules -> console), with %s from %s.\n",
		plural(len(o.Config.Rules), "rule"), o.ConfigName)
	fmt.Fprintf(out, "Nothing here touches a real cluster.\n")

	cluster, client, dyn, err := newCluster(clk.now)
	if err != nil {
		return nil, err
	}
	airflow, err := startAirflow(func(dag, run string, tasks []string) {
		printf("       Airflow (simulated): cleared %s.%s in run %s; the scheduler will run it again\n", dag, taskList(tasks), run)
	})
	if err != nil {
		return nil, err
	}
	defer airflow.Close()
	cfg := *o.Config
	cfg.Airflow.URL = airflow.URL() // the demo's Airflow is simulated, like its cluster
	// The night plays in seconds; its proposals wait for a decision until the morning.
	cfg.Proposals.TTL.Duration = max(cfg.Proposals.TTL.Duration, 12*time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan *app.Handle, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(runCtx, app.Options{
			Config: &cfg, Client: client, Dynamic: dyn, PatchSparkApplications: true, DataDir: dataDir, Notifier: notify, Logger: log,
			Now: clk.now, Resync: 2 * time.Second, Workers: 2, InboxAddr: o.Inbox, InboxReady: o.InboxReady,
			// The night plays on a simulated clock; cron schedules run on the real one.
			Schedule: app.ScheduleOptions{Disabled: true},
			Ready:    func(h *app.Handle) { ready <- h },
		})
	}()
	var h *app.Handle
	select {
	case h = <-ready:
	case err := <-done:
		return nil, fmt.Errorf("pipeline did not start: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	for _, st := range sc.Steps {
		clk.set(st.Time())
		printf("\n%s  %s\n", hhmm(st.Time()), st.Say)
		for _, w := range st.Status {
			ns, pod, _ := strings.Cut(w.Pod, "/")
			for container, l := range w.Logs {
				cluster.SetLog(ns, pod, container, l) // served by the log API, as the kubelet would
			}
		}
		pods, err := apply(ctx, client, dyn, st)
		if err != nil {
			stop()
			<-done
			return nil, fmt.Errorf("scenario step %s: %w", st.At, err)
		}
		res.Pods = append(res.Pods, pods...)
		if err := h.WaitIdle(ctx, o.Quiet); err != nil {
			stop()
			<-done
			return nil, err
		}
	}
	mu.Lock()
	summary(out, res)
	mu.Unlock()
	if o.Inbox != "" {
		printf("\nThe night is over; podmedic keeps running. Approve or deny the proposals in the local inbox\n" +
			"(its address is logged above, or see --inbox); decisions and their outcomes appear here. Ctrl-C stops.\n")
		<-ctx.Done()
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return res, nil
}

func summary(out io.Writer, res *Result) {
	byKind := map[finding.Kind]int{}
	flagged := map[string]bool{}
	proposals, autos := 0, 0
	for _, f := range res.Findings {
		byKind[f.Kind]++
		flagged[f.Namespace+"/"+f.Pod] = true
		if f.Action != nil {
			switch f.Action.Mode {
			case finding.ModeApprove:
				proposals++
			case finding.ModeAuto:
				autos++
			}
		}
	}
	var kinds []string
	for _, k := range finding.Kinds() {
		if n := byKind[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	var healthy []string
	for _, p := range res.Pods {
		if !flagged[p] {
			healthy = append(healthy, p)
		}
	}
	sort.Strings(healthy)
	fmt.Fprintf(out, "\nSummary of the night\n")
	fmt.Fprintf(out, "  findings            %d (%s)\n", len(res.Findings), strings.Join(kinds, ", "))
	fmt.Fprintf(out, "  proposals           %d waiting for approval, %d automatic\n", proposals, autos)
	fmt.Fprintf(out, "  pods without finding %d of %d: %s\n", len(healthy), len(res.Pods), strings.Join(healthy, ", "))
	fmt.Fprintf(out, "\nNext: `podmedic replay --input dump.json` on a dump of your cluster (kubectl get pods,pvc,events,sparkapplications -A -o json),\n")
	fmt.Fprintf(out, "or `podmedic run --kubeconfig ~/.kube/config --dry-run` to watch it live without acting.\n")
}
