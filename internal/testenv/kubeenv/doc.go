// Package kubeenv starts a real kube-apiserver backed by a real etcd on the
// loopback interface, for end-to-end tests that need a Kubernetes API without
// a cluster.
//
// The binaries come from hack/testbins.sh (`make testbins`), which builds
// them from the Go module proxy into <module root>/.cache/bin, or into
// $PODMEDIC_TESTBIN_DIR when that is set. Tests call [Require] first: it
// skips the test when the binaries are missing, unless PODMEDIC_REQUIRE_E2E=1
// is set, in which case the test fails.
//
// There is no kubelet, scheduler or controller-manager: pods stay Pending
// until a test writes their status itself through the status subresource,
// as a kubelet would. The ServiceAccount admission plugin is disabled, so
// pods can be created in a new namespace without a service account
// controller.
//
// Typical use:
//
//	func TestSomething(t *testing.T) {
//		kubeenv.Require(t)
//		env, err := kubeenv.Start(ctx, kubeenv.Options{})
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { _ = env.Stop() })
//		// use env.Client, env.Config or env.Kubeconfig
//	}
package kubeenv
