// Package deploy holds how podmedic is installed and watched — the Helm chart (helm/podmedic),
// the plain manifests rendered from it (manifests/, by render.sh), the Grafana dashboard
// (grafana/) — and the tests that check them: helm lint and template, least-privilege RBAC,
// kubeconform against the test apiserver's OpenAPI schemas, a server-side dry-run apply, and
// the Dockerfile's build recipe. It has no Go code of its own.
package deploy
