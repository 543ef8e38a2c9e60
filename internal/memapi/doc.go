// Package memapi is a small in-memory Kubernetes API server for the demo and for tests: the real
// client-go clientset talks to it through an http.RoundTripper (Server.RoundTripper,
// Server.Clientset), with no listener and no connection. It serves what podmedic uses, in JSON:
//
//   - core/v1 pods (with status, log and eviction), persistentvolumeclaims (with status) and
//     events; apps/v1 deployments, statefulsets, daemonsets and replicasets, batch/v1 jobs and
//     cronjobs (with status); events.k8s.io/v1 events; coordination.k8s.io/v1 leases; the Spark
//     operator's sparkoperator.k8s.io/v1beta2 sparkapplications and scheduledsparkapplications
//     (custom resources, as if their CRDs were installed: unstructured JSON, with status; through
//     Server.Dynamic); the discovery of each group version (/api/v1, /apis/GROUP/VERSION);
//     /version.
//   - get, list, watch (namespaced and across namespaces), create, update, patch (strategic
//     merge, JSON merge and JSON patch; a custom resource refuses strategic merge, as the
//     apiserver does) and delete (with preconditions).
//
// It behaves like a kube-apiserver where a client can tell: one resourceVersion counter for every
// write; uid, creationTimestamp and generation set on create; 409 on a stale update, a duplicate
// name or a failed delete precondition; errors as metav1.Status bodies (so apierrors.IsNotFound and
// friends work); label and field selectors, with the field labels the apiserver supports; lists
// with the current resourceVersion; watches from a resourceVersion, from the current state, or as
// a watch-list stream (sendInitialEvents, which client-go's reflectors use by default), with
// bookmarks; objects leaving a watch's selector are seen as deleted by that watch. Create clears
// the status of resources that have a status subresource (pods start Pending), update keeps it,
// and update of the status subresource changes nothing else.
//
// What it leaves out, on purpose: authentication, admission, validation beyond decoding, defaulting,
// namespaces as objects, finalizers and graceful deletion (a delete removes the object at once, as
// if the kubelet confirmed it), server-side apply, pagination (limit is ignored; every list is
// complete), protobuf and CBOR. Unlike a kube-apiserver, create keeps a uid and a
// creationTimestamp the client sets (a scripted cluster needs both). events.k8s.io/v1 and core/v1
// events are stored apart (an apiserver serves one resource in both versions). Pod logs are what
// SetLog registered (empty for a container without one).
//
// The watch history is bounded (about 4,096 changes): a watch from an older resourceVersion gets
// 410 Gone, as from an apiserver whose history was compacted, and the reflector relists.
package memapi
