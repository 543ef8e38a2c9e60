package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeConfig returns the client config the way kubectl finds it: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, with --context; in a pod without any of them, the
// in-cluster config.
func KubeConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" && context == "" && os.Getenv("KUBECONFIG") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

// Reachable checks that the API server answers within timeout, so a wrong kubeconfig fails at
// start with one clear line instead of informers retrying forever.
func Reachable(ctx context.Context, c kubernetes.Interface, host string, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Discovery().ServerVersion()
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("cannot reach the Kubernetes API at %s: %v", host, err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("cannot reach the Kubernetes API at %s: no answer within %s", host, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
