// Package e2e runs podmedic as a user would, against a real kube-apiserver and etcd (built
// from the Go module proxy by hack/testbins.sh) started once for the whole package. There is no
// kubelet: tests create pods and write their status through the status subresource, exactly as
// a kubelet would.
package e2e
