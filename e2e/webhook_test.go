package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/airflowenv"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
	"github.com/podmedic/podmedic/overrides"
)

// webhookConfig is the chart's MutatingWebhookConfiguration for pods, calling podmedic at addr
// for namespace only.
func webhookConfig(name, addr, namespace string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return kubeenv.WebhookConfig(name, "https://"+addr+"/mutate/pods", namespace)
}

// createWebhookConfig creates a MutatingWebhookConfiguration for the test's life.
func createWebhookConfig(t *testing.T, c kubernetes.Interface, cfg *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	_, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), cfg, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	})
}

// inboxProposals returns the proposals the local inbox at addr lists (nil when it does not
// answer).
func inboxProposals(addr string) []finding.Proposal {
	resp, err := http.Get("http://" + addr + "/api/proposals")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var all []finding.Proposal
	if json.NewDecoder(resp.Body).Decode(&all) != nil {
		return nil
	}
	return all
}

func memoryOfPod(t *testing.T, c kubernetes.Interface, ns, name string) (limit, request string, annotation string) {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	r := p.Spec.Containers[0].Resources
	l, q := r.Limits[corev1.ResourceMemory], r.Requests[corev1.ResourceMemory]
	return l.String(), q.String(), p.Annotations[overrides.AnnotationOverride]
}

// TestMemoryOverrideAppliedToTheNextTry: an Airflow worker OOMs; the memory proposal is
// approved in Slack and becomes an override, and the failed task is cleared in Airflow (the
// v2 stand-in records it); the API server calls podmedic's webhook (whose
// certificate and caBundle podmedic issued from the chart's empty Secret and configuration)
// and the next try's pod, created with the original 2Gi, is stored with the raised memory and
// the override's annotation. Another task's pod is unchanged; with podmedic stopped, pods are
// still created (failurePolicy Ignore).
func TestMemoryOverrideAppliedToTheNextTry(t *testing.T) {
	env := cluster(t)
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const bot, app = "xoxb-e2e-bot-token-7f3a", "xapp-1-e2e-app-token-9c2b"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot), slackenv.WithAppToken(app))
	af := airflowenv.Start(t, airflowenv.WithVersion(airflowenv.V2))
	const run = "scheduled__2026-11-20T00:00:00+00:00" // airflowWorker's
	af.AddRun("etl_daily", run, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	af.SetTask("etl_daily", run, "load", -1, airflowenv.StateFailed)
	suffix := strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	own := namespace(t, env, "podmedic-"+suffix)
	ns := namespace(t, env, "airflow-wh-"+suffix)
	_, err := c.CoreV1().Secrets(own).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podmedic-webhook-tls"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The namespace's LimitRange allows containers at most 2560Mi: the raise to 3Gi is capped
	// there (a 3Gi pod would be refused by the API server, and the task would not start).
	_, err = c.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "memory-max"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2560Mi")}}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	addr, natsAddr := freeAddr(t), freeAddr(t)
	cfgName := "podmedic-" + suffix
	createWebhookConfig(t, c, webhookConfig(cfgName, addr, ns))

	rules := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
airflow:
  url: `+af.URL()+`
  api_version: v2
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: true
  approvers: {users: [U0ALICE]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
    action: {type: propose-memory-limit, mode: approve}
`)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_APP_TOKEN=" + app, "POD_NAMESPACE=" + own,
		"AIRFLOW_USERNAME=" + airflowenv.DefaultUser, "AIRFLOW_PASSWORD=" + airflowenv.DefaultPassword},
		"--config", rules, "--webhook-addr", addr, "--webhook-host", "127.0.0.1", "--webhook-config", cfgName, "--nats-listen", natsAddr)
	require.NoError(t, sl.WaitConnected(ctx), "Socket Mode connected")
	require.Eventually(t, func() bool {
		cfg, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfgName, metav1.GetOptions{})
		return err == nil && len(cfg.Webhooks[0].ClientConfig.CABundle) > 0
	}, 30*time.Second, 100*time.Millisecond, "podmedic did not fill the caBundle\n%s", pm.logs())

	started := time.Now().Add(-3 * time.Minute)
	w := createPod(t, c, airflowWorker(ns, "etl-daily-load-try1", "etl_daily", "load"))
	writeStatus(t, c, w, oomKilled(started))
	msg := waitProposal(ctx, t, sl, "etl-daily-load-try1")
	approve(ctx, t, sl, msg, "U0ALICE")
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		m, ok := s.Message(msg.Channel, msg.TS)
		return ok && strings.Contains(string(m.Blocks), "memory override")
	}), "the message does not say the override was stored")
	// The thread reply that records the outcome offers to revoke the override.
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		for _, r := range s.Replies(msg.Channel, msg.TS) {
			if strings.Contains(string(r.Blocks), "podmedic.revoke") {
				return true
			}
		}
		return false
	}), "no Revoke button in the outcome's thread reply")
	// The task had failed: the approval also cleared it, so Airflow schedules the next try.
	require.Len(t, af.CallsTo("/clearTaskInstances"), 1, "the failed task was cleared")
	st, _ := af.TaskState("etl_daily", run, "load", -1)
	assert.Equal(t, airflowenv.StateNone, st)

	// The scheduler's next try: same task, the original 2Gi. The webhook's cache may take a
	// moment to see the override: retry the creation until it is raised (each a new pod).
	var limit, request, ann string
	var tries int
	var raised *corev1.Pod
	require.Eventually(t, func() bool {
		tries++
		p := airflowWorker(ns, "etl-daily-load-try2-"+string(rune('a'+tries)), "etl_daily", "load")
		p.Labels["try_number"], p.Annotations["try_number"] = "2", "2"
		raised = createPod(t, c, p)
		limit, request, ann = memoryOfPod(t, c, ns, p.Name)
		return ann != ""
	}, 15*time.Second, 500*time.Millisecond, "the next try's pod was not raised\n%s", pm.logs())
	assert.Equal(t, "2560Mi", limit, "3Gi approved, capped at the LimitRange's maximum")
	assert.Equal(t, "2Gi", request, "the request is raised too")
	id := overrides.Task{Cluster: "e2e", Namespace: ns, DagID: "etl_daily", TaskID: "load", Container: "base"}.ID()
	assert.Equal(t, id, ann)
	t.Logf("next try admitted with limit %s, request %s, override %s (after %d creation(s))", limit, request, ann, tries)

	// The try runs, then succeeds (the test writes the status as the kubelet would): the
	// proposal's thread says so, once each.
	reply := func(text string) {
		t.Helper()
		require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
			n := 0
			for _, r := range s.Replies(msg.Channel, msg.TS) {
				if r.Text == text {
					n++
				}
			}
			return n == 1
		}), "no thread reply %q\n%s", text, pm.logs())
	}
	writeStatus(t, c, raised, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
	reply("try 2 of etl_daily.load started with memory limit 2560Mi (override " + id + ", pod " + ns + "/" + raised.Name + ")")
	writeStatus(t, c, raised, func(st *corev1.PodStatus) { st.Phase = corev1.PodSucceeded })
	reply("try 2 of etl_daily.load succeeded with memory limit 2560Mi (override " + id + ", pod " + ns + "/" + raised.Name + ")")

	other := createPod(t, c, airflowWorker(ns, "etl-daily-extract-try2", "etl_daily", "extract"))
	limit, _, ann = memoryOfPod(t, c, ns, other.Name)
	assert.Equal(t, "2Gi", limit, "another task's pod is unchanged")
	assert.Empty(t, ann)

	// `podmedic overrides list` shows it; `revoke` ends it: the next pod keeps its 2Gi.
	cli := func(args ...string) string {
		out, err := exec.Command(suite.bin, append([]string{"overrides"}, append(args, "--nats-url", "nats://"+natsAddr)...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	var listed []overrides.Override
	require.NoError(t, json.Unmarshal([]byte(cli("list", "--output", "json")), &listed))
	require.Len(t, listed, 1)
	assert.Equal(t, []string{id, "3Gi", "U0ALICE", "active"}, []string{listed[0].ID, listed[0].Limit, listed[0].ApprovedBy, listed[0].State(time.Now())})
	assert.Equal(t, 1.0, pm.metric("podmedic_memory_overrides"))
	assert.Contains(t, cli("revoke", id, "--by", "U0BOB"), "override "+id+" of etl_daily.load (container base) revoked by U0BOB")
	assert.Contains(t, cli("list"), id+"  revoked")
	// Each change is a Kubernetes Event in the task's namespace, about the pod that OOMed.
	overrideEvent := func(reason string) string {
		t.Helper()
		var note string
		require.Eventually(t, func() bool {
			list, err := c.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			for _, e := range list.Items {
				if e.Reason == reason && e.Regarding.Name == "etl-daily-load-try1" && e.ReportingController == "podmedic" {
					note = e.Note
					return true
				}
			}
			return false
		}, 15*time.Second, 100*time.Millisecond, "no %s Event\n%s", reason, pm.logs())
		return note
	}
	assert.Contains(t, overrideEvent("MemoryOverrideStored"), "memory override "+id+" of Airflow task etl_daily.load, container base: limit 3Gi, request 2Gi until ")
	assert.Contains(t, overrideEvent("MemoryOverrideRevoked"), "revoked by U0BOB")
	require.Eventually(t, func() bool {
		tries++
		p := airflowWorker(ns, "etl-daily-load-try4-"+string(rune('a'+tries)), "etl_daily", "load")
		createPod(t, c, p)
		limit, _, ann = memoryOfPod(t, c, ns, p.Name)
		return ann == "" && limit == "2Gi"
	}, 15*time.Second, 500*time.Millisecond, "a pod created after the revoke is still raised")
	assert.Equal(t, 0.0, pm.metric("podmedic_memory_overrides"), "none in force after the revoke")

	pm.stop()
	start := time.Now()
	down := createPod(t, c, airflowWorker(ns, "etl-daily-load-try3", "etl_daily", "load"))
	limit, _, _ = memoryOfPod(t, c, ns, down.Name)
	assert.Equal(t, "2Gi", limit, "podmedic stopped: the pod is created unchanged")
	t.Logf("with podmedic stopped the pod was created in %s (failurePolicy Ignore)", time.Since(start).Round(time.Millisecond))
}

var inboxToken = regexp.MustCompile(`name="token" value="([0-9a-f]+)"`)

// inboxPost posts a form of the local inbox at addr (approve, deny, revoke) with its page's
// token, as the page's own buttons do, and returns the page it redirects to.
func inboxPost(t *testing.T, addr, path string) string {
	t.Helper()
	page := func(resp *http.Response, err error) string {
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		return string(b)
	}
	m := inboxToken.FindStringSubmatch(page(http.Get("http://" + addr + "/")))
	require.NotNil(t, m, "no token on the inbox page")
	return page(http.PostForm("http://"+addr+path, url.Values{"token": {m[1]}}))
}

// TestMemoryOverrideTwoReplicas: two replicas share NATS (the second connects to the first's
// server) and the chart's Secret; the API server calls only replica B's webhook. The memory
// proposal is approved in replica A's inbox, so A stores the override; B's webhook applies it
// to the next try's pod, from the KV watch of its cache. Revoked in B's inbox, it stops
// applying. Every step goes through the real surfaces (inbox forms, the API server).
func TestMemoryOverrideTwoReplicas(t *testing.T) {
	env := cluster(t)
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	suffix := strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	own := namespace(t, env, "podmedic-ha-"+suffix)
	ns := namespace(t, env, "airflow-ha-"+suffix)
	_, err := c.CoreV1().Secrets(own).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podmedic-webhook-tls"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	addrA, addrB, natsAddr, inboxA, inboxB := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfgName := "podmedic-ha-" + suffix
	createWebhookConfig(t, c, webhookConfig(cfgName, addrB, ns))
	rules := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
    action: {type: propose-memory-limit, mode: approve}
`)
	envs := []string{"POD_NAMESPACE=" + own}
	args := []string{"--config", rules, "--webhook-host", "127.0.0.1", "--webhook-config", cfgName}
	a := startPodmedicEnv(t, env, t.TempDir(), envs, append(args, "--webhook-addr", addrA, "--nats-listen", natsAddr, "--inbox-addr", inboxA)...)
	b := startPodmedicEnv(t, env, t.TempDir(), envs, append(args, "--webhook-addr", addrB, "--nats-url", "nats://"+natsAddr, "--inbox-addr", inboxB)...)
	require.Eventually(t, func() bool {
		cfg, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfgName, metav1.GetOptions{})
		return err == nil && len(cfg.Webhooks[0].ClientConfig.CABundle) > 0
	}, 30*time.Second, 100*time.Millisecond, "no caBundle\nA:\n%s\nB:\n%s", a.logs(), b.logs())

	w := createPod(t, c, airflowWorker(ns, "etl-daily-load-try1", "etl_daily", "load"))
	writeStatus(t, c, w, oomKilled(time.Now().Add(-3*time.Minute)))
	var pending []finding.Proposal
	require.Eventually(t, func() bool {
		pending = inboxProposals(inboxA)
		return len(pending) == 1
	}, 30*time.Second, 100*time.Millisecond, "no proposal in replica A's inbox\nA:\n%s\nB:\n%s", a.logs(), b.logs())
	page := inboxPost(t, inboxA, "/proposals/"+pending[0].ID+"/approve")
	approved := time.Now()
	id := overrides.Task{Cluster: "e2e", Namespace: ns, DagID: "etl_daily", TaskID: "load", Container: "base"}.ID()
	require.Contains(t, page, "memory override "+id, "replica A stored the override")

	// The next try's pods go through replica B's webhook only.
	var limit, ann string
	var tries int
	var raised *corev1.Pod
	require.Eventually(t, func() bool {
		tries++
		p := airflowWorker(ns, fmt.Sprintf("etl-daily-load-try2-%d", tries), "etl_daily", "load")
		p.Labels["try_number"], p.Annotations["try_number"] = "2", "2"
		raised = createPod(t, c, p)
		limit, _, ann = memoryOfPod(t, c, ns, p.Name)
		return ann == id
	}, 15*time.Second, 20*time.Millisecond, "replica B's webhook did not apply the override\nB:\n%s", b.logs())
	assert.Equal(t, "3Gi", limit)
	t.Logf("replica B's webhook applied the override replica A stored %s after the approval returned (%d pod creation(s))",
		time.Since(approved).Round(time.Millisecond), tries)

	// The try runs: whichever replica sees it first tells the proposal's thread, once.
	writeStatus(t, c, raised, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
	want := "try 2 of etl_daily.load started with memory limit 3Gi (override " + id + ", pod " + ns + "/" + raised.Name + ")"
	followUps := func() int {
		n := 0
		for _, p := range []*podmedic{a, b} {
			for _, nt := range p.noticesOf(finding.NoticeFollowUp) {
				if nt.Text == want {
					n++
				}
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return followUps() == 1 }, 15*time.Second, 50*time.Millisecond, "no follow-up %q", want)

	// Revoked in replica B's inbox (the history lists A's decision): B's webhook stops at once.
	page = inboxPost(t, inboxB, "/overrides/"+id+"/revoke")
	require.Contains(t, page, "override "+id+" of etl_daily.load (container base) revoked")
	tries = 0
	require.Eventually(t, func() bool {
		tries++
		p := airflowWorker(ns, fmt.Sprintf("etl-daily-load-try3-%d", tries), "etl_daily", "load")
		createPod(t, c, p)
		limit, _, ann = memoryOfPod(t, c, ns, p.Name)
		return ann == "" && limit == "2Gi"
	}, 15*time.Second, 20*time.Millisecond, "a pod created after the revoke is still raised")
	assert.Equal(t, 1, followUps(), "the follow-up was told once over both replicas")
}
