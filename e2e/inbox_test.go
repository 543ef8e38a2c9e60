package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// browser returns a headless Chromium context (Debian's chromium), or skips the test when it is
// not installed — failing instead under PODMEDIC_REQUIRE_E2E=1 (`make test` installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(kubeenv.EnvRequireE2E) == "1" {
			t.Fatalf("chromium not installed (make browser installs it): %v", err)
		}
		t.Skipf("chromium not installed (make browser installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestInboxApproveInBrowser: without Slack, a proposal waits in the local inbox; a human opens
// it in a browser and clicks Approve; the stuck pod is deleted from the cluster and the page
// shows who decided and the outcome.
func TestInboxApproveInBrowser(t *testing.T) {
	env := cluster(t)
	ctx := browser(t)
	ns := namespace(t, env, "inbox-"+strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: approve, params: {grace_period: 0}}
`)
	inbox := freeAddr(t)
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--inbox-addr", inbox)
	c := env.Client
	createStuckWorker(t, c, ns, "spark-submit-stuck")
	pm.waitFinding(finding.InitStuck, ns, "spark-submit-stuck", 30*time.Second)

	// Not deleted before a human decides.
	_, err := c.CoreV1().Pods(ns).Get(context.Background(), "spark-submit-stuck", metav1.GetOptions{})
	require.NoError(t, err, "approve mode: the pod stays until approved")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("http://"+inbox+"/"),
		chromedp.WaitVisible(chromedp.CSS("button.approve"))))
	pending, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".card")))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("button.approve")),
		chromedp.WaitVisible(chromedp.ID("flash"))))
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("flash")))
	require.NoError(t, err)
	history, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("history")))
	require.NoError(t, err)
	t.Logf("inbox card: %s", pending)
	t.Logf("after Approve: %s", flash)
	require.Contains(t, pending, "InitStuck")
	require.Contains(t, pending, "spark-submit-stuck")
	require.Contains(t, flash, "executed by inbox:")
	require.Contains(t, history, "executed")

	// The pod is gone from the cluster.
	require.Eventually(t, func() bool {
		_, err := c.CoreV1().Pods(ns).Get(context.Background(), "spark-submit-stuck", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 15*time.Second, 100*time.Millisecond, "the approved pod was not deleted")

	// And the page now says nothing is pending.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+inbox+"/")))
	empty, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("nothing-pending")))
	require.NoError(t, err)
	require.Contains(t, empty, "Nothing is waiting")
	pm.stop()
}
