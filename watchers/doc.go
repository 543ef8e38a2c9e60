// Package watchers streams the cluster's Pods, PersistentVolumeClaims and Events onto the bus.
// It runs shared informers scoped to the configured namespaces, trims every object to what the
// detectors need (SetTransform) and publishes each change as a versioned observation. It also
// serves its caches as the read-only view rule handlers consult. It knows nothing about rules.
package watchers
